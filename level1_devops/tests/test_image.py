"""The image: build it, run it on a loopback port with a read-only root filesystem, check /health and that it
predicts what the model does; then the release check (`level1 container-smoke`) end to end."""

import json
import os
import pickle
import socket

import numpy as np
import pytest

from level1.image import ImageError, build_image, container_smoke, docker_available, docker_client, stage_context
from taxi.generator import generate_month
from taxi.model import INPUT_COLUMNS, build_features, clean_trips
from taxi.smoke import SmokeTestFailed, call_json, wait_until_healthy

pytestmark = pytest.mark.docker
TAG = "level1-devops:test"


@pytest.fixture(scope="module")
def client():
    ok, why = docker_available()
    if not ok:
        if os.environ.get("REQUIRE_DOCKER") == "1":
            pytest.fail(f"REQUIRE_DOCKER=1 but {why}")
        pytest.skip(f"image test needs a Docker daemon: {why}")
    client = docker_client()
    yield client
    client.close()


@pytest.fixture(scope="module")
def image(client, trained, tmp_path_factory):
    return build_image(stage_context(tmp_path_factory.mktemp("context"), trained.handoff_dir), TAG, client)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_image_serves_the_handed_off_model(client, image, trained):
    assert image.attrs["Config"]["User"] == "10001:10001"  # the non-root app user
    assert "/health" in " ".join(image.attrs["Config"]["Healthcheck"]["Test"])
    port = _free_port()
    container = client.containers.run(
        TAG, detach=True, ports={"8000/tcp": ("127.0.0.1", port)}, read_only=True, tmpfs={"/tmp": "rw,size=16m"}
    )  # docker run --read-only --tmpfs /tmp: the service writes nothing but (maybe) temporary files
    try:
        container.reload()
        assert container.attrs["HostConfig"]["ReadonlyRootfs"] is True
        url = f"http://127.0.0.1:{port}"
        try:
            health = wait_until_healthy(url, timeout=90)
        except SmokeTestFailed:
            raise AssertionError(f"container never became healthy; logs:\n{container.logs().decode()}") from None
        metadata = json.loads(trained.model_path.with_suffix(".json").read_text())
        assert health["model_version"] == metadata["version"]

        trips = clean_trips(generate_month("2024-05", rows=200, seed=3)).head(50)[INPUT_COLUMNS]
        status, body = call_json(f"{url}/predict", json.loads(trips.to_json(orient="records", date_format="iso")))
        assert status == 200
        expected = pickle.loads(trained.model_path.read_bytes()).predict(build_features(trips))
        np.testing.assert_allclose(body["predictions"], expected, rtol=1e-9)
    finally:
        container.remove(force=True)


def test_release_check_runs_smokes_waits_for_healthcheck_and_removes(client, image):
    messages: list[str] = []
    name = "level1-test-release-check"
    container_smoke(client, TAG, _free_port(), name, echo=messages.append)
    assert "  docker HEALTHCHECK -> healthy" in messages
    assert any("POST /predict" in m for m in messages)
    assert messages[-1] == f"stopped and removed container {name}"
    assert not client.containers.list(all=True, filters={"name": name})


def test_release_check_refuses_a_busy_port_and_a_missing_image(client):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(ImageError, match="already in use"):
            container_smoke(client, TAG, busy.getsockname()[1])
    with pytest.raises(ImageError, match="no image level1-devops:no-such-tag"):
        container_smoke(client, "level1-devops:no-such-tag", _free_port())
