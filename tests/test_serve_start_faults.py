"""The `serve` command of every level with a registry (2, 3, 4), started for real as a process, when the platform
is not there: a tracking server that does not answer, a champion whose model artifact is corrupt. Each is one line
on stderr naming what failed and what to do, exit code 1, no traceback, and the port is never bound."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from taxi.smoke import free_port, port_in_use

BIN = Path(sys.executable).parent
ALIAS = {"2": "production", "3": "champion", "4": "champion"}


def serve(level: str, tmp_path: Path, tracking_uri: str) -> tuple[subprocess.CompletedProcess, int]:
    port = free_port()
    env = {
        **os.environ,
        f"LEVEL{level}_TRACKING_URI": tracking_uri,
        f"LEVEL{level}_MODEL_NAME": "trip-duration",
        "LEVEL4_PREDICTION_STORE": f"sqlite:///{tmp_path / 'predictions.db'}",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    command = [str(BIN / f"level{level}"), "serve", "--port", str(port)]
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    return done, port


def one_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize("level", ["2", "3", "4"])
def test_an_unreachable_tracking_server_is_one_line_naming_it(level, tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there: a stopped server
    done, port = serve(level, tmp_path, uri)
    assert one_line(done) == (
        f"cannot start: the MLflow registry at {uri} cannot be reached (connection refused): start the tracking "
        f"server, or point LEVEL{level}_TRACKING_URI at one that answers"
    )
    assert not port_in_use(port)


@pytest.fixture(scope="module")
def corrupt_registry(tmp_path_factory) -> str:
    """A sqlite registry whose only version, under every level's serving alias, has a truncated model file."""
    import mlflow
    from mlflow import MlflowClient

    from taxi.generator import generate_month
    from taxi.model import build_trip_pipeline, prepare_trips
    from taxi.tracking import log_trip_model

    root = tmp_path_factory.mktemp("corrupt")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("corrupt", artifact_location=(root / "artifacts").as_uri())
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        trips = generate_month("2024-01", rows=800)
        X, y = prepare_trips(trips)
        with mlflow.start_run(experiment_id=experiment):
            info = log_trip_model(build_trip_pipeline({"max_iter": 5}).fit(X, y), trips)
        version = mlflow.register_model(info.model_uri, "trip-duration").version
    finally:
        mlflow.set_tracking_uri(previous)
    for alias in set(ALIAS.values()):
        client.set_registered_model_alias("trip-duration", alias, version)
    [model_file] = (root / "artifacts").rglob("model.skops")
    model_file.write_bytes(model_file.read_bytes()[:100])  # an upload cut short
    return uri


@pytest.mark.parametrize("level", ["2", "4"])  # level 2 loads through its own path; 3 and 4 share serve_command
def test_a_corrupt_champion_is_one_line_saying_why(level, tmp_path, corrupt_registry):
    done, port = serve(level, tmp_path, corrupt_registry)
    line = one_line(done)
    assert line.startswith("cannot start: model 'trip-duration' v1 refused: its model file is corrupt (BadZipFile")
    assert line.endswith("point the alias at a version whose model is intact (or register the model again)")
    assert not port_in_use(port)
