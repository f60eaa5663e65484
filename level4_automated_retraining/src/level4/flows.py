"""The level's Prefect flows: ``monitor`` (a window -> Evidently reports), ``watch`` (monitor + the policy + its
actions) and ``retrain`` (a policy decision -> a retrained model through level 3's release).

    monitor:  load the window (predictions + feedback, by pickup time)   the champion's training reference
                -> drift, quality, performance reports (level4.monitor)
                -> reports/monitoring/<window>/*.html + *.json + result.json, the Evidently workspace
    watch:    monitor -> policy.yaml decides (level4.policy) -> alert (level4.alerts), quarantine, retrain
    retrain:  params.yaml <- the decision's months -> dvc repro -> certify on the window's newest trips
                -> @staging smoke test -> canary on the running service -> @champion, or not (level4.release)

``make monitor`` runs ``monitor`` alone (``level4 monitor``: the latest month with predictions, or ``--month`` /
``--start --end``). ``watch`` starts a retraining in one of two ways:

- **event-driven**, when a long-lived Prefect server runs the ``retrain/on-breach`` deployment (``make
  orchestrate``): it emits the event ``taxi.policy.retrain`` with the decision as payload, and the deployment's
  trigger (a Prefect automation) starts the retraining with the decision as its parameter;
- **directly** otherwise (no server, or Prefect's temporary one, which evaluates no automation): it calls the
  ``retrain`` flow itself.
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

from level4.alerts import Alert, Notifier
from level4.monitor import MonitorConfig, MonitoringResult, load_window, monitor_window, save_reports
from level4.policy import Action, Decision, DecisionLog, decide, load_policy
from level4.prediction_log import PredictionStore, recent_pickups
from level4.reference import champion_reference
from level4.release import certified_rmse, project_settings
from level4.release import retrain as run_retraining
from level4.service import prediction_store
from level4.settings import Settings
from level4.workspace import add_window, monitoring_project
from taxi.pipeline.common import load_params

RETRAIN_EVENT = "taxi.policy.retrain"
RETRAIN_DEPLOYMENT = "retrain/on-breach"


class MonitoringError(RuntimeError):
    """The monitoring flow cannot run: no predictions in the window, no champion or reference, bad thresholds."""


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
    with store.engine.connect() as connection:
        pickups = recent_pickups(connection, recent)
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


# ---- the policy and its actions ----


@flow(name="retrain", log_prints=True)
def retrain(project_dir: str = ".", decision: dict[str, Any] | None = None, service_url: str | None = None) -> dict:
    """A policy decision (``Decision`` as a dict) -> the retrained model through certification, staging and the
    canary on the service at ``service_url``; returns the release's decision record."""
    if not decision:
        raise MonitoringError("retrain needs the policy's decision (training months, window, reason)")
    project = Path(project_dir).resolve()
    settings = project_settings(project)
    return run_retraining(project, Decision.model_validate(decision), service_url, settings.token)


def retraining_is_event_driven() -> bool:
    """True when a long-lived Prefect server (PREFECT_API_URL) runs the ``retrain/on-breach`` deployment."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        return False
    try:
        with get_client(sync_client=True) as client:
            client.read_deployment_by_name(RETRAIN_DEPLOYMENT)
    except Exception:  # no such deployment, or the server cannot be reached: retrain directly
        return False
    return True


def request_retraining(project: Path, decision: Decision, service_url: str | None) -> str:
    """Emit the retraining event the ``retrain/on-breach`` deployment's trigger waits for; its id."""
    from prefect.events import emit_event

    event = emit_event(
        event=RETRAIN_EVENT,
        resource={"prefect.resource.id": f"taxi.window.{decision.window}", "prefect.resource.name": decision.window},
        payload={"project_dir": str(project), "decision": decision.model_dump(mode="json"), "service_url": service_url},
    )
    return str(event.id) if event else "not emitted"


def alert_for(decision: Decision) -> Alert:
    quarantine = Action.quarantine in decision.actions
    title = f"{decision.rule} in {decision.window}"
    if quarantine:
        then = "the window is quarantined: no model trains on it, no retraining, no promotion until the feed is fixed"
    else:
        then = "retraining" if decision.retrain else f"no retraining ({decision.held_back})"
    return Alert(title=title, text=f"{decision.reason}; {then}", severity="critical" if quarantine else "warning",
                 window=decision.window, details=decision.evidence)  # fmt: skip


@flow(name="watch", log_prints=True)
def watch(project_dir: str = ".", month: str | None = None, service_url: str | None = None) -> dict[str, Any]:
    """Monitor a window, let policy.yaml decide, act (see module doc). Returns the monitoring result, the
    decision and what came of it (``outcome``: the retraining's record, or the event requested)."""
    project = Path(project_dir).resolve()
    settings = project_settings(project)
    policy = load_policy(settings.policy_file)
    result = MonitoringResult.model_validate(monitor(project_dir=str(project), month=month))
    client = MlflowClient(settings.tracking_uri)
    champion = result.champion_version
    champion_rmse = certified_rmse(client, settings.model_name, champion) if champion else None
    log = DecisionLog(settings.decision_log)
    decision = decide(policy, result, champion_rmse, log.read())
    print(decision.summary())
    notifier = Notifier(settings.alert_log, settings.webhook)
    if Action.alert in decision.actions:
        notifier.send(alert_for(decision))
    outcome: dict[str, Any] = {}
    if decision.retrain and retraining_is_event_driven():
        outcome = {"requested": request_retraining(project, decision, service_url), "via": RETRAIN_DEPLOYMENT}
        print(f"retraining requested: event {RETRAIN_EVENT} -> deployment {RETRAIN_DEPLOYMENT}")
    elif decision.retrain:
        outcome = {"release": retrain(project_dir=str(project), decision=decision.model_dump(mode="json"),
                                      service_url=service_url)}  # fmt: skip
        release = outcome["release"]
        if release["decision"] != "promoted":
            notifier.send(Alert(title=f"retrained v{release['version']} not promoted", severity="warning",
                                text=f"{release['decision']} at {release['stage']}: {release['reason']}",
                                window=decision.window))  # fmt: skip
    log.append(decision, outcome=outcome)
    return {"monitoring": result.model_dump(mode="json"), "decision": decision.model_dump(mode="json"), **outcome}
