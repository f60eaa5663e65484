"""Faults of the platform under a hot-swapping service, each injected for real: a real ``mlflow server`` (sqlite
backend and proxied artifacts in a temporary folder, on a loopback port) that is stopped while the service polls
it and started again, and model artifacts truncated or tampered with in the server's artifact store. The service
is the real app over HTTP (``serve_in_thread``)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pytest
import skops.io
import yaml
from mlflow import MlflowClient
from prometheus_client.parser import text_string_to_metric_families

from taxi.generator import generate_month
from taxi.model import build_trip_pipeline, prepare_trips
from taxi.registry_serving import CannotStart, explain_start_failures, holder_for
from taxi.serving import create_app, serve_in_thread
from taxi.smoke import free_port
from taxi.tracking import ModelArtifactError, RegistryUnreachable, log_trip_model

NAME = "trip-duration"
GOOD = {"PULocationID": 74, "DOLocationID": 42, "trip_distance": 1.8, "lpep_pickup_datetime": "2024-03-05T08:15:00"}
POLL = 0.3  # seconds between the service's polls


class TrackingServer:
    """``mlflow server`` on 127.0.0.1:``port`` over ``root`` (sqlite backend, artifacts served from ``root``);
    stopped by its process group id (the group this test started), started again on the same port and data."""

    def __init__(self, root: Path, port: int):
        self.root, self.port = root, port
        self.url = f"http://127.0.0.1:{port}"
        self.artifacts = root / "artifacts"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> None:
        command = [
            str(Path(sys.executable).parent / "mlflow"), "server",
            "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
            "--artifacts-destination", str(self.artifacts),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
        ]  # fmt: skip
        log = (self.root / "server.log").open("a")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:  # a wait for the server, not a timing assertion
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"mlflow server did not start: {(self.root / 'server.log').read_text()[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM the server's process group (mlflow server runs uvicorn as a child), SIGKILL it after 20 s."""
        if self.process is None:
            return
        process, self.process = self.process, None
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        deadline = time.monotonic() + 20
        while _answers(self.url) and time.monotonic() < deadline:  # the child that listens has gone too
            time.sleep(0.1)


def _answers(url: str) -> bool:
    try:
        httpx.get(f"{url}/health", timeout=1)
        return True
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[TrackingServer]:
    """A tracking server with ``NAME`` v1 (champion), v2 and v3: the same small model logged three times, so each
    version has an artifact of its own to break."""
    server = TrackingServer(tmp_path_factory.mktemp("tracking"), free_port())
    server.start()
    previous = mlflow.get_tracking_uri()
    try:
        mlflow.set_tracking_uri(server.url)
        trips = generate_month("2024-01", rows=1000)
        X, y = prepare_trips(trips)
        pipeline = build_trip_pipeline({"max_iter": 10}).fit(X, y)
        client = MlflowClient(server.url)
        experiment = client.create_experiment("faults")
        for _ in range(3):
            with mlflow.start_run(experiment_id=experiment):
                info = log_trip_model(pipeline, trips)
            mlflow.register_model(info.model_uri, NAME)
        client.set_registered_model_alias(NAME, "champion", "1")
        yield server
    finally:
        mlflow.set_tracking_uri(previous)
        server.stop()


@pytest.fixture
def remote(server, monkeypatch) -> Iterator[MlflowClient]:
    """The server running, MLflow pointed at it with few retries (a stopped server fails a poll at once), the
    champion back on v1 after the test."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    if server.process is None:
        server.start()
    previous = mlflow.get_tracking_uri()
    client = MlflowClient(server.url)
    try:
        yield client
    finally:
        if server.process is None:
            server.start()
        client.set_registered_model_alias(NAME, "champion", "1")
        mlflow.set_tracking_uri(previous)


def model_file(server: TrackingServer, client: MlflowClient, version: str) -> Path:
    """The model file of ``version`` in the server's artifact store (where the server keeps it on disk)."""
    location = client.get_model_version_download_uri(NAME, version)
    assert location.startswith("mlflow-artifacts:/"), location  # proxied: the server keeps it in its folder
    path = server.artifacts / location.removeprefix("mlflow-artifacts:").lstrip("/") / "model.skops"
    assert path.is_file(), f"{location}: {sorted(server.artifacts.rglob('*'))[:20]}"
    return path


def metric_values(text: str) -> dict[str, float]:
    """Prometheus text -> {sample name with its labels: value} (parsing it proves the format)."""
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll ``condition`` until it is truthy (a wait for the poller, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return result


def test_a_registry_that_goes_away_keeps_the_model_serving_says_so_and_recovers(server, remote, caplog):
    caplog.set_level(logging.INFO, logger="taxi.serving.hotswap")
    holder = holder_for(server.url, NAME, poll_interval=POLL, challenger=False)
    with serve_in_thread(create_app(holder)) as url, httpx.Client(base_url=url, timeout=30) as http:
        first = http.post("/predict", json=GOOD)
        assert first.status_code == 200 and first.json()["model_version"] == "1"

        server.stop()  # the tracking server is gone while the service polls it
        wait_for(lambda: holder.status.consecutive_failures >= 5, "five failed polls")
        status = http.get("/model").json()["hot_swap"]
        for _ in range(5):  # the service answers from the model it has, as before
            answer = http.post("/predict", json=GOOD)
            assert answer.status_code == 200
            assert answer.json()["predictions"] == first.json()["predictions"] and answer.json()["model_version"] == "1"
        assert http.get("/health").json() == {"status": "ok", "model_version": "1"}
        assert status["last_poll_ok"] is False and status["last_error_stage"] == "resolve"
        assert f"the MLflow registry at {server.url} cannot be reached (connection refused)" in status["last_error"]
        assert status["last_error_at"] and status["last_success_at"] < status["last_error_at"]
        assert status["seconds_since_last_success"] > 0 and status["serving"] == {"champion": "1", "challenger": None}
        metrics = metric_values(http.get("/metrics").text)
        assert metrics['taxi_model_reload_failures_total{stage="resolve"}'] >= 5
        assert metrics["taxi_model_last_poll_ok"] == 0 and metrics["taxi_model_consecutive_poll_failures"] >= 5
        assert metrics["taxi_model_seconds_since_last_success"] > 0
        error = [k for k in metrics if k.startswith("taxi_model_reload_error_info")]
        assert len(error) == 1 and "cannot be reached" in error[0]
        failures = [r.getMessage() for r in caplog.records if "model reload failed" in r.getMessage()]
        assert 1 <= len(failures) < 5 and all("still serving champion v1" in f for f in failures)  # not every poll

        server.start()  # back, and a new champion released meanwhile
        remote.set_registered_model_alias(NAME, "champion", "2")
        wait_for(lambda: http.post("/predict", json=GOOD).json()["model_version"] == "2", "the swap to v2", 90)
        status = http.get("/model").json()["hot_swap"]
        assert status["last_poll_ok"] is True and status["consecutive_failures"] == 0
        assert "cannot be reached" in status["last_error"]  # the last failure is kept, with its time
        metrics = metric_values(http.get("/metrics").text)
        assert metrics["taxi_model_last_poll_ok"] == 1 and metrics["taxi_model_consecutive_poll_failures"] == 0
        assert not any(k.startswith("taxi_model_reload_error_info") for k in metrics)
    assert any("model reload recovered" in r.getMessage() for r in caplog.records)


def _tamper(path: Path, mlmodel: Path) -> None:
    """Replace the model file with one that holds ``os.system`` (a type from a module our models are not made of)
    and list it in the MLmodel's trusted types too, as an attacker with write access to the store would: MLflow
    alone would then load it."""
    pipeline = skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))
    pipeline.evil = os.system
    skops.io.dump(pipeline, path)
    meta = yaml.safe_load(mlmodel.read_text())
    meta["flavors"]["sklearn"]["skops_trusted_types"] = skops.io.get_untrusted_types(file=path)
    mlmodel.write_text(yaml.safe_dump(meta))


def test_a_corrupt_or_tampered_artifact_is_refused_and_the_champion_keeps_serving(server, remote):
    truncated = model_file(server, remote, "2")
    truncated.write_bytes(truncated.read_bytes()[:200])  # a partial upload: the zip's directory is missing
    tampered = model_file(server, remote, "3")
    _tamper(tampered, tampered.parent / "MLmodel")

    holder = holder_for(server.url, NAME, poll_interval=POLL, challenger=False)
    with serve_in_thread(create_app(holder)) as url, httpx.Client(base_url=url, timeout=30) as http:
        for version, why in (
            ("2", "its model file is corrupt (BadZipFile"),
            ("3", "the model contains types from unexpected modules: posix.system"),
        ):
            remote.set_registered_model_alias(NAME, "champion", version)
            attempt = f"loading champion v{version}:"
            wait_for(lambda: attempt in (holder.status.last_error or ""), f"the poll that loads v{version}")  # noqa: B023
            answer = http.post("/predict", json=GOOD)
            assert answer.status_code == 200 and answer.json()["model_version"] == "1"
            model = http.get("/model").json()
            assert model["version"] == "1" and model["hot_swap"]["wanted"]["champion"] == version
            error = model["hot_swap"]["last_error"]
            assert model["hot_swap"]["last_error_stage"] == "load", error
            assert f"loading champion v{version}: ModelArtifactError: model '{NAME}' v{version} refused: " in error
            assert why in error, error
        assert not hasattr(holder.current.champion.model.pyfunc.get_raw_model(), "evil")


def test_a_service_whose_only_champion_is_corrupt_does_not_start(server, remote):
    path = model_file(server, remote, "2")
    path.write_bytes(b"\0" * 4096)  # a disk or a copy gone wrong
    remote.set_registered_model_alias(NAME, "champion", "2")
    with pytest.raises(ModelArtifactError, match="v2 refused: its model file is corrupt"):
        holder_for(server.url, NAME, challenger=False)
    with pytest.raises(CannotStart) as refused:  # what a serve command prints
        explain_start_failures(lambda: holder_for(server.url, NAME, challenger=False), "LEVEL3_")()
    message = str(refused.value)
    assert "\n" not in message and "v2 refused" in message and "point the alias at a version" in message


def test_a_registry_that_is_not_there_at_start_is_one_line_naming_it(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    previous = mlflow.get_tracking_uri()
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    try:
        with pytest.raises(RegistryUnreachable, match="cannot be reached"):
            holder_for(uri, NAME)
        with pytest.raises(CannotStart) as refused:
            explain_start_failures(lambda: holder_for(uri, NAME), "LEVEL4_")()
    finally:
        mlflow.set_tracking_uri(previous)
    assert str(refused.value) == (
        f"the MLflow registry at {uri} cannot be reached (connection refused): start the tracking server, "
        "or point LEVEL4_TRACKING_URI at one that answers"
    )
