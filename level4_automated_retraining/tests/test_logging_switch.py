"""LEVEL4_PREDICTION_LOG=false: the level 4 service answers as level 3's does, with no prediction store at all."""

from __future__ import annotations

import httpx

from level4.service import create_app
from level4.settings import Settings
from taxi.api_payloads import trip_payloads
from taxi.generator import generate_month
from taxi.serving import serve_in_thread

TRIPS, _ = trip_payloads(generate_month("2024-03", rows=50, seed=5))


def test_the_switch_reads_from_the_environment_and_defaults_to_on(monkeypatch):
    monkeypatch.delenv("LEVEL4_PREDICTION_LOG", raising=False)
    assert Settings().prediction_log is True
    monkeypatch.setenv("LEVEL4_PREDICTION_LOG", "false")
    assert Settings().prediction_log is False


def test_logging_off_opens_no_store_and_serves_as_level_3(registry, tmp_path):
    store = tmp_path / "predictions.db"
    app = create_app(registry.settings_for(tmp_path, prediction_log=False, prediction_store=f"sqlite:///{store}"))
    assert app.state.prediction_log is None and app.state.store is None
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        single = client.post("/predict", json=TRIPS[0])
        batch = client.post("/predict", json=TRIPS[:20])
        feedback = client.post("/feedback", json={"request_id": single.json()["request_id"], "actual_duration_min": 9})
        metrics = client.get("/metrics").text
        described = client.get("/openapi.json").json()["info"]["description"]
    assert single.status_code == batch.status_code == 200 and len(batch.json()["predictions"]) == 20
    assert feedback.status_code == 404  # no log, nothing to join feedback to
    assert "taxi_prediction_log" not in metrics and "taxi_feedback" not in metrics
    assert "taxi_http_requests_total" in metrics and "taxi_prediction_minutes" in metrics  # the shared service's own
    assert "prediction logging is off" in described
    assert not store.exists()  # never opened, never created
