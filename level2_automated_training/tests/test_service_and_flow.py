"""The service serves and reports the production version; the Prefect flow registers a new version, and
only when something changed."""

import numpy as np
import pytest
from fastapi.testclient import TestClient

from level2.release import release
from level2.service import create_app
from taxi.generator import generate_month
from taxi.model import INPUT_COLUMNS, clean_trips
from taxi.tracking import RegistryError, load_pipeline

NAME = "trip-duration"


def test_service_serves_the_production_version(project):
    client = project.client()
    release(client, NAME, 1)
    app = TestClient(create_app(project.settings))
    model = app.get("/model").json()
    assert model["version"] == "1" and model["alias"] == "production"
    assert model["run_id"] == client.get_model_version(NAME, "1").run_id
    assert len(model["tags"]["data_md5"]) == 32
    assert app.get("/health").json()["model_version"] == "1"

    trips = clean_trips(generate_month("2024-06", rows=300, seed=5)).head(40)[INPUT_COLUMNS]
    payload = [
        {**row, "lpep_pickup_datetime": row["lpep_pickup_datetime"].isoformat(), "passenger_count": None}
        for row in trips.drop(columns="passenger_count").to_dict(orient="records")
    ]
    served = np.array(app.post("/predict", json=payload).json()["predictions"])
    assert served.shape == (40,) and (served > 0).all()
    assert app.post("/predict", json={**payload[0], "trip_distance": -1}).status_code == 422


def test_service_refuses_to_start_without_a_release(project):
    from level2.settings import Settings

    with pytest.raises(RegistryError, match="no version of 'trip-duration' has the alias 'staging'"):
        create_app(Settings(tracking_uri=project.settings.tracking_uri, serving_alias="staging"))


def test_prefect_flow_registers_a_new_version(project, monkeypatch, tmp_path):
    from prefect.testing.utilities import prefect_test_harness

    from level2.flows import training_pipeline
    from taxi.pipeline.prefect_server import without_heartbeats

    monkeypatch.setenv("LEVEL2_TRACKING_URI", project.settings.tracking_uri)
    monkeypatch.setenv("PATH", project.env["PATH"])
    client = project.client()
    before = max(int(v.version) for v in client.search_model_versions(f"name = '{NAME}'"))
    with prefect_test_harness(), without_heartbeats():  # each flow run ends with its work, not up to 1 s later
        result = training_pipeline(project_dir=str(project.dir), first_month="2024-02")
        again = training_pipeline(project_dir=str(project.dir), first_month="2024-02")  # nothing changed
    assert result["version"] == before + 1 and result["new"]
    assert again["version"] == result["version"] and not again["new"]
    assert client.get_model_version(NAME, str(result["version"])).tags["train_months"] == "2024-02,2024-03"
    assert any((project.dir.parent / "dvc-remote").rglob("*")), "dvc push sent nothing to the remote"
    pipeline = load_pipeline(project.dir / "models" / "model.skops")
    assert pipeline.predict(generate_month("2024-05", rows=200)[INPUT_COLUMNS].head(3)).shape == (3,)
