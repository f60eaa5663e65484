"""Releasing a model at level 4: level 3's release machinery (``taxi.deployment``), fed by this level.

    first_release(project)                           # dvc repro -> certify on the frozen holdout -> @champion
    retrain(project, decision, service_url, token)   # the policy's decision -> a retrained, certified champion (or not)

- **the first champion** is released like any level 3 candidate: the DVC pipeline trains and registers it, the
  gates certify it on the frozen holdout month (params.yaml ``holdout``), the service is smoke-tested serving it
  from ``@staging``, and it becomes ``@champion`` (no canary: there is nothing to compare it with).
- **a retraining** applies the decision's months to params.yaml (``ingest.first_month``/``months``/
  ``exclude_months``: the quarantined months are never read), runs the DVC pipeline, and takes the new version
  through the same gates, staging and canary. The holdout is **the window's own newest trips with their true
  duration**: the logged predictions of the last ``prepare.test_days`` days of the window's month (the days the
  pipeline holds out from training, so no model has seen them), on which champion and candidate are compared.
  A stale champion loses on them; a candidate trained on broken or stale data does not pass.
  The decision's evidence goes with the candidate as version tags (``policy_rule``, ``policy_window``, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from mlflow import MlflowClient
from prefect import flow

from level4.policy import Decision, pipeline_overrides
from level4.prediction_log import PredictionStore
from level4.service import create_app, prediction_store
from level4.settings import Settings, load_settings
from taxi.certification import Holdout
from taxi.deployment.cd import Release, run_cd
from taxi.deployment.certify import frozen_holdout, stored_report
from taxi.model import MAX_MINUTES, MIN_MINUTES
from taxi.pipeline.common import load_params
from taxi.schema import INPUT_COLUMNS
from taxi.settings import rooted_in

PATHS = ("params_file", "reports_dir", "workspace_dir", "deploy_log", "holdout_dir", "certification_dir",
         "policy_file", "decision_log", "alert_log", "replay_dir")  # fmt: skip


class ReleaseError(RuntimeError):
    """A release cannot start: e.g. no logged trips with their true duration to certify on."""


def project_settings(project: Path) -> Settings:
    """The settings, with their relative paths (and a relative sqlite tracking URI) taken in ``project``."""
    return rooted_in(load_settings(), project, PATHS)


def staging_app(settings: Settings, holder: Any):
    """The level's service as staging and the flow's own canary run it: the same app, logging nothing (their
    test traffic is not production's)."""
    return create_app(settings.model_copy(update={"prediction_log": False}), holder)


def release_for(project: Path, settings: Settings, holdout: Any, **changes: Any) -> Release:
    return Release(
        project=project, settings=settings, create_app=staging_app, holdout=holdout,
        deploy_log=settings.deploy_log, reports_dir=settings.certification_dir, **changes,
    )  # fmt: skip


@flow(name="first-release", log_prints=True)
def first_release(project: Path, via: str = "level 4: first release") -> dict[str, Any]:
    """Train, certify on the frozen holdout month, smoke-test and promote the first champion (see module doc): a
    flow of its own, its steps (level 3's tasks) in it."""
    settings = project_settings(project)
    holdout = lambda: frozen_holdout(load_params(settings.params_file)["holdout"], settings.holdout_dir)  # noqa: E731
    return run_cd(release_for(project, settings, holdout, via=via))


def window_holdout(store: PredictionStore, month: str, test_days: int) -> Holdout:
    """The logged trips of the last ``test_days`` days of ``month`` with a true duration of 1-60 minutes."""
    from level4.monitor import load_window  # here: the first release needs no Evidently (seconds to import)

    end = (pd.Period(month, "M") + 1).start_time
    start = end - pd.Timedelta(days=test_days)
    window = load_window(store, start.to_pydatetime(), end.to_pydatetime())
    scored = window[window["actual_duration_min"].between(MIN_MINUTES, MAX_MINUTES)]
    if scored.empty:
        raise ReleaseError(f"no logged trips with their true duration between {start:%Y-%m-%d} and {end:%Y-%m-%d}")
    X = scored.rename(columns={"pickup_datetime": "lpep_pickup_datetime"})[INPUT_COLUMNS].reset_index(drop=True)
    label = f"logged trips {start:%Y-%m-%d}..{end - pd.Timedelta(days=1):%Y-%m-%d} with their true duration"
    return Holdout(X, scored["actual_duration_min"].reset_index(drop=True), label=label)


def retrain(
    project: Path, decision: Decision, service_url: str | None = None, token: str | None = None
) -> dict[str, Any]:
    """The decision's retraining, certification, staging and canary on the running service (see module doc)."""
    settings = project_settings(project)
    test_days = int(load_params(settings.params_file)["prepare"]["test_days"])
    holdout = window_holdout(prediction_store(settings.prediction_store, project), decision.month, test_days)
    tags = {
        "policy_rule": decision.rule or "",
        "policy_window": decision.window,
        "policy_reason": decision.reason[:500],
        "policy_training_months": ",".join(decision.training_months),
        "policy_quarantined": ",".join(decision.quarantined),
    }
    release = release_for(
        project, settings, holdout, service_url=service_url, service_token=token,
        via=f"policy: {decision.rule} on {decision.window}", tags=tags,
    )  # fmt: skip
    return run_cd(release, params=pipeline_overrides(decision), why=f"retrained by the policy: {decision.reason}")


def certified_rmse(client: MlflowClient, name: str, version: str) -> float | None:
    """The RMSE a version was certified with (the quality gate, on its certification holdout), or None."""
    report = stored_report(client, name, version)
    if report is None:
        return None
    quality = next((g for g in report.gates if g.name == "quality"), None)
    return float(quality.figures["rmse"]) if quality else None
