"""A real sqlite MLflow registry in a temporary folder with one small champion, and helpers to serve it.

``registry`` trains the shared model once per session on a small generated month and registers it as
``trip-duration`` v1 with the ``champion`` alias; ``settings_for(tmp_path)`` gives level 4 settings on that
registry with a prediction store and reports in ``tmp_path``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from level4.settings import Settings
from taxi.api_payloads import api_trips
from taxi.generator import generate_month
from taxi.loader import write_parquet
from taxi.model import build_trip_pipeline, prepare_trips
from taxi.tracking import log_trip_model

LEVEL = Path(__file__).resolve().parent.parent
MODEL = "trip-duration"
# the throwaway PostgreSQL server: shared/tests/postgres.py (the root's platform test uses it too), found through
# the installed shared package (../shared here, shared/ in an exported copy); --import-mode=importlib puts no test
# folder on sys.path
SHARED = Path(__import__("taxi").__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("taxi_tests_postgres", SHARED / "tests" / "postgres.py")
pg = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pg)


@dataclass(frozen=True)
class Registry:
    tracking_uri: str
    run_id: str
    reference: pd.DataFrame  # the training months' trips as the API accepts them
    model_uri: str

    def register(self, name: str, *aliases: str) -> None:
        """Model ``name`` with one version of the champion's model per alias (v1 gets the first alias)."""
        client = MlflowClient(self.tracking_uri)
        client.create_registered_model(name)
        for alias in aliases:
            version = client.create_model_version(name, self.model_uri, run_id=self.run_id)
            client.set_registered_model_alias(name, alias, version.version)

    def settings_for(self, folder: Path, **changes) -> Settings:
        values = {
            "tracking_uri": self.tracking_uri,
            "model_name": MODEL,
            "poll_interval": 0.5,
            "prediction_store": f"sqlite:///{folder / 'predictions.db'}",
            "reports_dir": folder / "reports",
            "workspace_dir": folder / "workspace",
        }
        return Settings(**(values | changes))


@pytest.fixture(scope="session")
def registry(tmp_path_factory) -> Registry:
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("level4-tests", (root / "mlruns").as_uri()))
    month = generate_month("2024-01", rows=3000, seed=42)
    X, y = prepare_trips(month)
    with mlflow.start_run(run_name="champion") as run:
        info = log_trip_model(build_trip_pipeline({"max_iter": 40, "random_state": 42}).fit(X, y), X)
    client = MlflowClient(uri)
    client.create_registered_model(MODEL)
    version = client.create_model_version(MODEL, info.model_uri, run_id=run.info.run_id)
    client.set_registered_model_alias(MODEL, "champion", version.version)
    reference = api_trips(month).reset_index(drop=True)
    write_parquet(reference, root / "reference.parquet")  # what the DVC stage `reference` logs with a training run
    client.log_artifact(run.info.run_id, str(root / "reference.parquet"), "monitoring")
    return Registry(uri, run.info.run_id, reference, info.model_uri)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator:
    """A PostgreSQL server of its own for the session (``shared/tests/postgres.py``). Without one here the PostgreSQL
    tests skip, naming what to install; with REQUIRE_POSTGRES=1 (CI) they fail instead."""
    bindir = pg.find_bindir()
    if bindir is None:
        _missing(f"no PostgreSQL server (initdb, postgres) found: {pg.INSTALL_HINT}")
    if importlib.util.find_spec("psycopg") is None:
        _missing("psycopg is not installed: the level's extra `postgres` (uv sync --extra postgres)")
    server = pg.PostgresServer.create(bindir)
    try:
        server.start()
        yield server
    finally:
        server.remove()


def _missing(reason: str) -> None:
    if os.environ.get("REQUIRE_POSTGRES") == "1":
        pytest.fail(f"REQUIRE_POSTGRES=1 and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def postgres_url(postgres_server, request) -> str:
    """A new, empty database on the session's server (started again if a test stopped it)."""
    postgres_server.start()
    return postgres_server.new_database(request.node.name)
