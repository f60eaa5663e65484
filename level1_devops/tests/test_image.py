"""The image: build it, run it on a loopback port, check /health and that it predicts what the model does."""

import json
import os
import pickle
import socket
import subprocess
import uuid

import numpy as np
import pytest

from level1.image import docker_available, stage_context
from taxi.generator import generate_month
from taxi.model import INPUT_COLUMNS, build_features, clean_trips
from taxi.smoke import SmokeTestFailed, call_json, wait_until_healthy

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def docker():
    ok, why = docker_available()
    if not ok:
        if os.environ.get("REQUIRE_DOCKER") == "1":
            pytest.fail(f"REQUIRE_DOCKER=1 but {why}")
        pytest.skip(f"image test needs a Docker daemon: {why}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_image_serves_the_handed_off_model(docker, trained, tmp_path):
    context = stage_context(tmp_path / "context", trained.handoff_dir)
    tag = "level1-devops:test"
    subprocess.run(["docker", "build", "-q", "-t", tag, str(context)], check=True, capture_output=True, timeout=1200)
    name = f"level1-test-{uuid.uuid4().hex[:8]}"
    port = _free_port()
    subprocess.run(["docker", "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8000", tag], check=True)
    try:
        url = f"http://127.0.0.1:{port}"
        try:
            health = wait_until_healthy(url, timeout=90)
        except SmokeTestFailed:
            logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True).stdout
            raise AssertionError(f"container never became healthy; logs:\n{logs}") from None
        metadata = json.loads(trained.model_path.with_suffix(".json").read_text())
        assert health["model_version"] == metadata["version"]

        trips = clean_trips(generate_month("2024-05", rows=200, seed=3)).head(50)[INPUT_COLUMNS]
        status, body = call_json(f"{url}/predict", json.loads(trips.to_json(orient="records", date_format="iso")))
        assert status == 200
        expected = pickle.loads(trained.model_path.read_bytes()).predict(build_features(trips))
        np.testing.assert_allclose(body["predictions"], expected, rtol=1e-9)

        user = subprocess.run(["docker", "inspect", "-f", "{{.Config.User}}", tag], capture_output=True, text=True)
        assert user.stdout.strip() == "10001:10001"  # the non-root app user
        healthcheck = subprocess.run(
            ["docker", "inspect", "-f", "{{json .Config.Healthcheck}}", tag], capture_output=True, text=True
        )
        assert "/health" in healthcheck.stdout
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
