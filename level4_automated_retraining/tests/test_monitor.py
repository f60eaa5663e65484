"""Monitoring with the real Evidently: a stationary window is quiet, a drifted one drifts on the right column,
a broken feed fails the quality tests (not merely drift); the flow keeps one set of reports per window in the
Evidently workspace, whose project and dashboard Evidently lists."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from level4.monitor import MonitorConfig, MonitoringResult, load_window, monitor_window
from level4.prediction_log import PredictionStore
from taxi.api_payloads import api_trips
from taxi.generator import generate_month
from taxi.model import duration_minutes


def logged(store: PredictionStore, month: str, scenario: str, rows: int = 3000, feedback: bool = False) -> None:
    """A month of trips as the service logs them (and, with ``feedback``, their true durations)."""
    trips = generate_month(month, rows=rows, scenario=scenario, seed=11)
    kept = api_trips(trips)
    now = datetime.now(UTC).replace(tzinfo=None)
    records = [
        {"request_id": f"{month}-{scenario}-{i}", "row": 0, "logged_at": now, "model_version": "1",
         "variant": "champion", "PULocationID": int(t.PULocationID), "DOLocationID": int(t.DOLocationID),
         "trip_distance": float(t.trip_distance), "pickup_datetime": t.lpep_pickup_datetime.to_pydatetime(),
         "passenger_count": None if np.isnan(t.passenger_count) else int(t.passenger_count), "prediction": 12.0}
        for i, t in enumerate(kept.itertuples())
    ]  # fmt: skip
    store.insert_predictions(records)
    if feedback:
        from level4.feedback import Feedback, record_feedback

        truth = duration_minutes(trips.loc[kept.index]).to_numpy()
        pairs = zip(records, truth, strict=True)
        items = [Feedback(request_id=r["request_id"], actual_duration_min=m) for r, m in pairs if 0 < m < 600]
        record_feedback(store, items, all_or_nothing=False)


def monitored(registry, tmp_path, month: str, scenario: str, **kwargs) -> tuple[MonitoringResult, pd.DataFrame]:
    store = PredictionStore(f"sqlite:///{tmp_path / f'{scenario}.db'}")
    logged(store, month, scenario, **kwargs)
    window = load_window(store)
    result, _ = monitor_window(window, registry.reference, MonitorConfig(), label=f"{scenario} {month}")
    return result, window


def test_a_stationary_window_is_quiet(registry, tmp_path):
    result, window = monitored(registry, tmp_path, "2024-05", "stationary", feedback=True)
    assert result.drifted_columns == [] and not result.dataset_drift
    assert result.quality_failures == []
    judged = window[window["actual_duration_min"].between(1, 60)]  # scored as the model is: trips of 1-60 min
    assert result.rows_with_feedback == len(judged) > 2500
    errors = judged["actual_duration_min"] - judged["prediction"]
    assert result.rmse == pytest.approx(np.sqrt((errors**2).mean()))  # Evidently's RMSE, read from the snapshot


def test_a_drifted_window_drifts_on_the_distance_and_passes_quality(registry, tmp_path):
    result, _ = monitored(registry, tmp_path, "2024-08", "drift")  # after the change: three times the airport runs
    assert "trip_distance" in result.drifted_columns and result.drift_share > 0
    assert not {"pickup_hour", "pickup_weekday", "passenger_count"} & set(result.drifted_columns)
    assert result.quality_failures == []  # the world changed; the data is fine
    assert result.rmse is None  # no feedback yet: no performance report


def test_a_broken_feed_is_a_quality_failure_not_just_drift(registry, tmp_path):
    result, _ = monitored(registry, tmp_path, "2024-08", "data_quality")  # vendor 2 reports kilometres
    assert [f.check for f in result.quality_failures] == ["distance_unit"]
    assert "distance_vs_usual" in result.quality_failures[0].description
    assert "trip_distance" in result.drifted_columns  # it drifts too, but the quality test says why


def test_an_empty_window_is_refused(registry, tmp_path):
    store = PredictionStore(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(ValueError, match="no logged predictions"):
        monitor_window(load_window(store), registry.reference, MonitorConfig(), label="empty")


def test_the_flow_keeps_one_set_of_reports_per_window_in_the_workspace(registry, tmp_path, monkeypatch):
    from evidently.ui.workspace import Workspace
    from prefect.testing.utilities import prefect_test_harness

    from level4.flows import MonitoringError, monitor
    from level4.workspace import window_runs
    from taxi.pipeline.prefect_server import without_heartbeats

    store = tmp_path / "predictions.db"
    for month, scenario in (("2024-05", "stationary"), ("2024-08", "drift")):
        logged(PredictionStore(f"sqlite:///{store}"), month, scenario, rows=1500, feedback=True)
    monkeypatch.setenv("LEVEL4_TRACKING_URI", registry.tracking_uri)
    monkeypatch.setenv("LEVEL4_PREDICTION_STORE", f"sqlite:///{store}")
    monkeypatch.setenv("LEVEL4_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("LEVEL4_WORKSPACE_DIR", str(tmp_path / "ws"))
    with prefect_test_harness(), without_heartbeats():  # as `level4 monitor` runs it
        latest = monitor(project_dir=str(tmp_path))  # the latest month with predictions
        monitor(project_dir=str(tmp_path), month="2024-05")
        monitor(project_dir=str(tmp_path), month="2024-05")  # again: replaces that window's snapshots
        with pytest.raises(MonitoringError, match="no logged predictions"):
            monitor(project_dir=str(tmp_path), month="2023-01")
    assert latest["window"] == "2024-08" and "trip_distance" in latest["drifted_columns"]
    assert latest["champion_version"] == "1" and latest["rmse"] is not None
    saved = json.loads((tmp_path / "reports" / "2024-08" / "result.json").read_text())
    assert MonitoringResult.model_validate(saved).drifted_columns == latest["drifted_columns"]
    for name in ("drift", "quality", "performance"):
        assert (tmp_path / "reports" / "2024-05" / f"{name}.html").stat().st_size > 10_000
        assert (tmp_path / "reports" / "2024-05" / f"{name}.json").exists()

    workspace = Workspace.create(str(tmp_path / "ws"))  # read back through Evidently's own API
    [project] = workspace.list_projects()
    assert project.name == "trip-duration monitoring"
    runs = window_runs(workspace, project.id)
    assert {window: sorted(reports) for window, reports in runs.items()} == {
        "2024-05": ["drift", "performance", "quality"],
        "2024-08": ["drift", "performance", "quality"],
    }
    dashboard = workspace.get_dashboard(project.id)
    titles = [panel.title for panel in dashboard.panels]
    assert "Data drift: share of drifted columns" in titles and "Model error on trips with feedback (minutes)" in titles
    assert "Model error, last window with feedback (RMSE, minutes)" in titles
    assert len(dashboard.tabs) == 1 and len(dashboard.tabs[0].panels) == len(set(dashboard.tabs[0].panels))
    assert pd.Timestamp(workspace.get_run(project.id, workspace.list_runs(project.id)[0]).timestamp).year == 2024
