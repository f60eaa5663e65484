"""Hot swap from a real sqlite MLflow registry: moving the champion alias changes what the service serves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from taxi.generator import generate_month
from taxi.model import build_trip_pipeline, prepare_trips
from taxi.registry_serving import holder_for
from taxi.registry_watch import alias_resolver, registry_holder
from taxi.serving import create_app
from taxi.tracking import log_trip_model

NAME = "trip-duration"
GOOD = {"PULocationID": 74, "DOLocationID": 42, "trip_distance": 1.8, "lpep_pickup_datetime": "2024-03-05T08:15:00"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[MlflowClient]:
    """A sqlite registry in tmp_path with two registered versions of NAME (artifacts in tmp_path too)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        client = MlflowClient(uri)
        experiment = client.create_experiment("hotswap", artifact_location=(tmp_path / "artifacts").as_uri())
        trips = generate_month("2024-01", rows=2000)
        X, y = prepare_trips(trips)
        for rate in (0.1, 0.3):
            pipeline = build_trip_pipeline({"max_iter": 30, "learning_rate": rate}).fit(X, y)
            with mlflow.start_run(experiment_id=experiment):
                info = log_trip_model(pipeline, trips)
            mlflow.register_model(info.model_uri, NAME)
        client.set_registered_model_alias(NAME, "champion", "1")
        yield client
    finally:
        mlflow.set_tracking_uri(previous)


def test_moving_the_champion_alias_swaps_the_served_version(client, monkeypatch):
    holder = registry_holder(NAME, challenger_share=0.5, client=client)
    holder.poll(raise_on_error=True)
    http = TestClient(create_app(holder))
    first = http.post("/predict", json=GOOD).json()
    assert first["model_version"] == "1" and first["variant"] == "champion"
    model = http.get("/model").json()
    assert model["alias"] == "champion" and model["run_id"] == client.get_model_version(NAME, "1").run_id

    client.set_registered_model_alias(NAME, "champion", "2")
    assert holder.poll() is True
    second = http.post("/predict", json=GOOD).json()
    assert second["model_version"] == "2" and second["predictions"] != first["predictions"]
    assert http.get("/health").json()["model_version"] == "2"

    client.set_registered_model_alias(NAME, "challenger", "1")
    assert holder.poll() is True
    assert http.get("/model").json()["challenger"]["alias"] == "challenger"

    # the registry goes away: a failed poll, not "the challenger alias was removed"
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    holder._resolve = alias_resolver(NAME, client=MlflowClient("http://127.0.0.1:9"))  # discard port: refused
    assert holder.poll() is False
    assert holder.current.versions() == {"champion": "2", "challenger": "1"}
    status = http.get("/model").json()["hot_swap"]
    assert status["last_poll_ok"] is False and "127.0.0.1:9" in status["last_error"]

    holder._resolve = alias_resolver(NAME, client=client)  # back, and the challenger alias removed
    client.delete_registered_model_alias(NAME, "challenger")
    assert holder.poll() is True and holder.current.challenger is None


def test_a_service_told_to_wait_starts_without_a_champion_and_serves_the_first_one(client, tmp_path):
    client.delete_registered_model_alias(NAME, "champion")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(LookupError, match="no champion"):
        holder_for(uri, NAME)  # by default, no champion is an error at start

    holder = holder_for(uri, NAME, wait_for_champion=True)
    assert holder.current is None
    http = TestClient(create_app(holder))
    waiting = http.get("/health")
    assert waiting.status_code == 503 and "no champion" in waiting.json()["detail"]
    assert http.post("/predict", json=GOOD).status_code == 503

    client.set_registered_model_alias(NAME, "champion", "2")
    assert holder.poll() is True  # what the poller thread does every poll_interval
    assert http.get("/health").status_code == 200
    assert http.post("/predict", json=GOOD).json()["model_version"] == "2"
