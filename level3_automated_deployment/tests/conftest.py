"""Real sqlite MLflow in a temporary folder, small generated months, models trained once per session.

``models`` logs each kind of candidate once (good, better, km-distance feed, shuffled targets, wrong
signature); ``lab.register(kind, name)`` adds a registry version of it under ``name`` (cheap: no new run),
so each test gets a registered model of its own and its aliases start empty.
"""

from __future__ import annotations

import contextlib
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.models import infer_signature

from level3.settings import Settings
from taxi.deployment.params import apply_params
from taxi.generator import generate_month
from taxi.model import build_trip_pipeline, prepare_trips
from taxi.tracking import log_trip_model, pip_requirements, trusted_types

LEVEL = Path(__file__).resolve().parent.parent
SHARED = Path(__import__("taxi").__file__).resolve().parents[2]
ROWS = 3000
TRAIN = {"max_iter": 60, "random_state": 42}
# test-sized thresholds: fewer timed calls, a smaller canary; the gates and their tolerances are the level's
TEST_PARAMS = {
    "holdout.rows": ROWS,
    "certification.operational.latency_calls": 10,
    "certification.operational.latency_rounds": 1,
    "canary.requests_per_variant": 60,
    "canary.min_ok_per_variant": 20,
    "canary.max_p95_ratio": 5.0,  # a busy test machine: this is about the flow, not about latency
}


def months(first: str, n: int, scenario: str = "stationary") -> pd.DataFrame:
    start = pd.Period(first, "M")
    return pd.concat([generate_month(str(start + i), rows=ROWS, scenario=scenario) for i in range(n)])


@dataclass
class Lab:
    dir: Path
    settings: Settings
    client: MlflowClient
    runs: dict[str, tuple[str, str]] = field(default_factory=dict)  # kind -> (model uri, run id)

    def register(self, kind: str, name: str) -> str:
        """A new version of ``name`` holding the ``kind`` model; returns its number."""
        uri, run_id = self.runs[kind]
        with contextlib.suppress(mlflow.exceptions.MlflowException):  # registered by an earlier call
            self.client.create_registered_model(name)
        version = self.client.create_model_version(name, uri, run_id=run_id, tags={"kind": kind})
        return str(version.version)

    def settings_for(self, name: str) -> Settings:
        return self.settings.model_copy(
            update={"model_name": name, "deploy_log": self.dir / "reports" / f"{name}.jsonl"}
        )


def _log(kind: str, pipeline, trips: pd.DataFrame, signature_frame: pd.DataFrame | None = None) -> tuple[str, str]:
    with mlflow.start_run(run_name=kind, tags={"data_md5": f"md5-of-{kind}", "git_commit": "abc123"}) as run:
        mlflow.log_params({f"train.{k}": v for k, v in TRAIN.items()})
        if signature_frame is None:
            info = log_trip_model(pipeline, trips)
        else:  # a model whose logged signature is not the API's trip schema
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                signature = infer_signature(signature_frame, np.zeros(len(signature_frame)))
            info = mlflow.sklearn.log_model(
                pipeline, name="model", signature=signature, skops_trusted_types=trusted_types(pipeline),
                pip_requirements=pip_requirements(),
            )  # fmt: skip
    return info.model_uri, run.info.run_id


@pytest.fixture(scope="session")
def level_files() -> tuple[Path, Path, dict]:
    """This level's folder, the shared package's folder, the test-sized parameter overrides."""
    return LEVEL, SHARED, TEST_PARAMS


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> Lab:
    root = tmp_path_factory.mktemp("lab")
    params = root / "params.yaml"
    shutil.copy2(LEVEL / "params.yaml", params)
    apply_params(params, TEST_PARAMS)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    settings = Settings(
        tracking_uri=uri, params_file=params, holdout_dir=root / "data" / "holdout", poll_interval=0.5,
        deploy_log=root / "reports" / "deployments.jsonl",
    )  # fmt: skip
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("level3-tests", artifact_location=(root / "mlruns").as_uri())
    mlflow.set_experiment(experiment_id=experiment)
    lab = Lab(root, settings, MlflowClient(uri))

    X, y = prepare_trips(months("2024-01", 2))
    good = build_trip_pipeline(TRAIN).fit(X, y)
    lab.runs["good"] = _log("good", good, X)
    Xb, yb = prepare_trips(months("2024-01", 3))
    lab.runs["better"] = _log("better", build_trip_pipeline(TRAIN).fit(Xb, yb), Xb)
    Xk, yk = prepare_trips(months("2024-07", 2, scenario="data_quality"))
    lab.runs["km"] = _log("km", build_trip_pipeline(TRAIN).fit(Xk, yk), Xk)
    shuffled = np.random.default_rng(0).permutation(y.to_numpy())
    lab.runs["shuffled"] = _log("shuffled", build_trip_pipeline(TRAIN).fit(X, shuffled), X)
    lab.runs["wrong_signature"] = _log("wrong_signature", good, X, signature_frame=X.drop(columns="passenger_count"))
    return lab
