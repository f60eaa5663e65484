"""Cross-level fixtures: every service level's app, built the level's own way on small models (the API tests
here fuzz them and check their docs pages)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import mlflow
import pytest
from fastapi import FastAPI
from mlflow import MlflowClient

from taxi.generator import generate_month
from taxi.model import build_trip_pipeline, prepare_trips
from taxi.tracking import log_trip_model

MODEL = "trip-duration"
ADMIN_TOKEN = "test-admin-token"


@pytest.fixture(scope="session")
def registry(tmp_path_factory) -> str:
    """A sqlite MLflow registry with one small model: ``trip-duration`` v1 @production (level 2), @champion (3, 4)."""
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("service-levels", (root / "mlruns").as_uri()))
    X, y = prepare_trips(generate_month("2024-01", rows=1500, seed=7))
    with mlflow.start_run() as run:
        info = log_trip_model(build_trip_pipeline({"max_iter": 20, "random_state": 0}).fit(X, y), X)
    client = MlflowClient(uri)
    client.create_registered_model(MODEL)
    version = client.create_model_version(MODEL, info.model_uri, run_id=run.info.run_id).version
    for alias in ("production", "champion"):
        client.set_registered_model_alias(MODEL, alias, version)
    return uri


def _level1(folder: Path, registry: Callable[[], str]) -> FastAPI:
    from level1.handoff import handoff
    from level1.ingest import ingest
    from level1.service import create_app
    from level1.settings import Settings
    from level1.train import train

    settings = Settings(
        data_dir=folder / "data", model_dir=folder / "models", handoff_dir=folder / "handoff",
        model_path=folder / "handoff" / "model.pkl", params_file=folder / "params.yaml", months=2, rows=1500,
    )  # fmt: skip
    settings.params_file.write_text("max_iter: 20\nrandom_state: 0\n")  # a small model: this is about the API
    ingest(settings, echo=lambda *_: None)
    train(settings)
    handoff(settings)
    return create_app(settings)


def _level2(folder: Path, registry: Callable[[], str]) -> FastAPI:
    from level2.service import create_app
    from level2.settings import Settings

    return create_app(Settings(tracking_uri=registry(), model_name=MODEL))


def _level3(folder: Path, registry: Callable[[], str]) -> FastAPI:
    from level3.service import create_app
    from level3.settings import Settings

    settings = Settings(
        tracking_uri=registry(), model_name=MODEL, admin_token=ADMIN_TOKEN, poll_interval=3600,
        deploy_log=folder / "deployments.jsonl",
    )  # fmt: skip
    return create_app(settings)


def _level4(folder: Path, registry: Callable[[], str]) -> FastAPI:
    from level4.service import create_app
    from level4.settings import Settings

    settings = Settings(
        tracking_uri=registry(), model_name=MODEL, admin_token=ADMIN_TOKEN, poll_interval=3600,
        deploy_log=folder / "deployments.jsonl", prediction_store=f"sqlite:///{folder / 'predictions.db'}",
        reports_dir=folder / "reports", workspace_dir=folder / "workspace",
    )  # fmt: skip
    return create_app(settings)


_BUILDERS = {"level1": _level1, "level2": _level2, "level3": _level3, "level4": _level4}


@pytest.fixture(scope="session")
def admin_token() -> str:
    """The admin bearer token of the level 3 and 4 apps ``level_app`` builds."""
    return ADMIN_TOKEN


@pytest.fixture(scope="session")
def level_app(request) -> Callable[[str, Path], FastAPI]:
    """``level_app("level3", folder)``: that level's app on a small model (level 1: a handed-off file trained in
    ``folder``; levels 2-4: the ``registry`` fixture's, with ``ADMIN_TOKEN`` as the admin token of 3 and 4)."""
    return lambda level, folder: _BUILDERS[level](folder, lambda: request.getfixturevalue("registry"))
