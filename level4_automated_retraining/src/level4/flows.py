"""The monitoring flow (Prefect): one window of logged predictions -> Evidently reports -> the typed result.

    load the window (predictions + feedback, by pickup time)   the champion's training reference (MLflow run)
        -> drift, quality, performance reports (level4.monitor)
        -> reports/monitoring/<window>/*.html + *.json + result.json, and the Evidently workspace (level4.workspace)

``make monitor`` runs it on its own (``level4 monitor``: the latest month with predictions, or ``--month`` /
``--start --end``); part 2's policy will run it on a schedule and read the ``MonitoringResult`` it returns.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow import MlflowClient
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from pydantic import ValidationError
from sqlalchemy import select

from level4.monitor import MonitorConfig, MonitoringResult, load_window, monitor_window, save_reports
from level4.prediction_log import PREDICTIONS, PredictionStore
from level4.reference import champion_reference
from level4.service import prediction_store
from level4.settings import Settings, load_settings
from level4.workspace import add_window, monitoring_project
from taxi.pipeline.common import load_params
from taxi.settings import rooted_in


class MonitoringError(RuntimeError):
    """The monitoring flow cannot run: no predictions in the window, no champion or reference, bad thresholds."""


def project_settings(project: Path) -> Settings:
    """The settings, with their relative paths (and a relative sqlite tracking URI) taken in ``project``."""
    return rooted_in(load_settings(), project, ("params_file", "reports_dir", "workspace_dir"))


def monitor_config(params_file: Path) -> MonitorConfig:
    """params.yaml ``monitoring`` as a ``MonitorConfig``; a wrong key or value is a MonitoringError naming it."""
    params = load_params(params_file) if params_file.exists() else {}
    try:
        return MonitorConfig(**(params.get("monitoring") or {}))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'monitoring'}: {e['msg']}" for e in exc.errors())
        raise MonitoringError(f"params.yaml [monitoring]: {problems}") from None


def window_bounds(
    store: PredictionStore, month: str | None, start: str | None, end: str | None
) -> tuple[datetime | None, datetime | None, str]:
    """(start, end, label) of the window: a month, explicit bounds, or the latest month with predictions."""
    if month and (start or end):
        raise MonitoringError("give --month or --start/--end, not both")
    if start or end:
        try:
            first, last = (pd.Timestamp(v).to_pydatetime() if v else None for v in (start, end))
        except ValueError as exc:
            raise MonitoringError(f"--start/--end must be dates or times (ISO 8601): {exc}") from None
        return first, last, f"{start or 'start'}_{end or 'end'}"
    if month is None:
        month = latest_month(store)
    try:
        period = pd.Period(month, "M")
    except ValueError:
        raise MonitoringError(f"--month must be YYYY-MM; got {month!r}") from None
    return period.start_time.to_pydatetime(), (period + 1).start_time.to_pydatetime(), str(period)


def latest_month(store: PredictionStore, recent: int = 500) -> str:
    """The pickup month most of the latest ``recent`` logged predictions fall in (a few trips of any month carry
    pickups of the month before or after, as real files do: the newest pickup alone would pick a stray one)."""
    store.ensure_schema()
    query = select(PREDICTIONS.c.pickup_datetime).order_by(PREDICTIONS.c.id.desc()).limit(recent)
    with store.engine.connect() as connection:
        pickups = pd.to_datetime(pd.Series(connection.execute(query).scalars().all(), dtype="object"))
    if pickups.empty:
        raise MonitoringError(f"the prediction store {store.describe()} holds no predictions yet")
    return str(pickups.dt.to_period("M").mode().iloc[0])


@task(cache_policy=NO_CACHE)  # inputs are live objects (a store, settings): nothing to cache
def load(store: PredictionStore, start: datetime | None, end: datetime | None, label: str) -> pd.DataFrame:
    window = load_window(store, start, end)
    if window.empty:
        raise MonitoringError(f"window {label}: no logged predictions with a pickup in it")
    print(f"window {label}: {len(window)} predictions, {window['actual_duration_min'].notna().sum()} with feedback")
    return window


@task(cache_policy=NO_CACHE)
def reference_of_champion(settings: Settings) -> tuple[str, pd.DataFrame]:
    from level4.reference import ReferenceError

    try:
        version, reference = champion_reference(MlflowClient(settings.tracking_uri), settings.model_name)
    except ReferenceError as exc:
        raise MonitoringError(str(exc)) from None
    print(f"reference: {len(reference)} training trips of {settings.model_name} v{version} (@champion)")
    return version, reference


@task(cache_policy=NO_CACHE)
def publish(settings: Settings, result: MonitoringResult, snapshots: dict[str, Any]) -> Path:
    """HTML + JSON reports and result.json; the snapshots to the Evidently workspace (replacing the window's)."""
    folder = save_reports(result, snapshots, settings.reports_dir)
    workspace, project = monitoring_project(settings.workspace_dir, settings.project_name)
    added = add_window(workspace, project.id, result.window, snapshots)
    print(f"reports: {folder}; {added} snapshots in the Evidently workspace {settings.workspace_dir}")
    return folder


@flow(name="monitor", log_prints=True)
def monitor(
    project_dir: str = ".", month: str | None = None, start: str | None = None, end: str | None = None
) -> dict[str, Any]:
    """Monitor one window of logged predictions against the champion's training reference (see module doc);
    returns the ``MonitoringResult`` as a dict."""
    project = Path(project_dir).resolve()
    settings = project_settings(project)
    config = monitor_config(settings.params_file)
    store = prediction_store(settings.prediction_store, project)
    first, last, label = window_bounds(store, month, start, end)
    window = load(store, first, last, label)
    version, reference = reference_of_champion(settings)
    result, snapshots = monitor_window(
        window, reference, config, label=label, start=first, end=last, champion_version=version,
        timestamp=last or datetime.now(),
    )  # fmt: skip
    publish(settings, result, snapshots)
    print(result.summary())
    return result.model_dump(mode="json")
