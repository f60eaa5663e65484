"""The one model every path serves: generated months, trained as level 3's pipeline trains, registered once.

``prepare_model(workdir)`` generates the months of level 3's ``params.yaml`` (``ingest`` group), fits
``taxi.model.build_trip_pipeline`` with its ``train`` group on the training months, logs it with
``taxi.tracking.log_trip_model`` to a sqlite MLflow in ``workdir`` and registers it as ``trip-duration``
version 1 with the aliases the services serve (level 2: ``production``, level 3: ``champion``). It then loads
that registered version back: the in-process rows, the fast path and the reference answers all use the
pipeline the registry holds, not the object that was fitted. The trips sent to the services are the
held-out month's served trips, as API payloads.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from hashlib import file_digest
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import yaml

from benchmark.inprocess import TRIPS
from taxi.generator import generate_month
from taxi.model import INPUT_COLUMNS, build_trip_pipeline, prepare_trips
from taxi.months import month_range
from taxi.tracking import log_trip_model, model_inputs
from taxi.trip import Trip, trips_to_frame
from taxi.validation import validate_frame

MODEL_NAME = "trip-duration"  # what levels 2 and 3 register (their settings' model_name)
ALIASES = ("production", "champion")  # level 2 serves @production, level 3 @champion
EXPERIMENT = "bench"


@dataclass
class BenchModel:
    """The registered version and what the measurements need from it."""

    tracking_uri: str
    name: str
    version: str
    pipeline: Any  # the registered scikit-learn Pipeline (raw trips in), loaded back from the registry
    payloads: list[dict[str, Any]]  # held-out trips as API payloads (valid ``Trip`` objects)
    train_rows: int
    params: dict[str, Any]

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def frame(self, rows: int | None = None) -> pd.DataFrame:
        """The first ``rows`` payloads as the model's input frame (the signature's types)."""
        trips = TRIPS.validate_python(self.payloads[:rows])
        return model_inputs(trips_to_frame(trips))

    def reference(self, rows: int | None = None) -> np.ndarray:
        """The registered pipeline's answers for the first ``rows`` payloads: what every path must match."""
        return np.asarray(self.pipeline.predict(self.frame(rows)), dtype="float64")


def level_params(path: Path) -> dict[str, Any]:
    """The ``ingest``, ``prepare`` and ``train`` groups of a level's params.yaml."""
    params = yaml.safe_load(path.read_text())
    return {group: params[group] for group in ("ingest", "prepare", "train")}


def _month(month: str, ingest: dict[str, Any]) -> pd.DataFrame:
    raw = generate_month(month, rows=int(ingest["rows"]), seed=int(ingest["seed"]), scenario=ingest["scenario"])
    frame, _ = validate_frame(raw, source=f"synthetic {month}", month=month)
    return frame


def to_payload(row: dict[str, Any]) -> dict[str, Any]:
    """One input row -> the JSON object a client POSTs (TLC field names; no passenger count is null)."""
    passengers = row["passenger_count"]
    return {
        "PULocationID": int(row["PULocationID"]),
        "DOLocationID": int(row["DOLocationID"]),
        "trip_distance": float(row["trip_distance"]),
        "lpep_pickup_datetime": pd.Timestamp(row["lpep_pickup_datetime"]).isoformat(),
        "passenger_count": None if pd.isna(passengers) else int(passengers),
    }


def prepare_model(workdir: Path, params_file: Path, trips: int = 2000) -> BenchModel:
    """Train, log, register and alias one model under ``workdir``; see the module doc."""
    params = level_params(params_file)
    ingest = params["ingest"]
    months = month_range(str(ingest["first_month"]), int(ingest["months"]))
    held_out = int(params["prepare"]["test_months"])
    train_months, test_months = months[:-held_out], months[-held_out:]
    X, y = prepare_trips(pd.concat([_month(m, ingest) for m in train_months], ignore_index=True))
    fitted = build_trip_pipeline(params["train"]).fit(X, y)

    tracking_uri = f"sqlite:///{(workdir / 'mlflow.db').resolve()}"
    mlflow.set_tracking_uri(tracking_uri)
    experiment = mlflow.create_experiment(EXPERIMENT, artifact_location=(workdir / "mlartifacts").resolve().as_uri())
    with mlflow.start_run(experiment_id=experiment, run_name="bench"):
        mlflow.log_params({f"train.{k}": v for k, v in params["train"].items()})
        info = log_trip_model(fitted, X)
    version = mlflow.register_model(info.model_uri, MODEL_NAME)
    client = mlflow.MlflowClient()
    for alias in ALIASES:
        client.set_registered_model_alias(MODEL_NAME, alias, version.version)
    registered = mlflow.sklearn.load_model(f"models:/{MODEL_NAME}/{version.version}")

    test, _ = prepare_trips(pd.concat([_month(m, ingest) for m in test_months], ignore_index=True))
    rows = test[INPUT_COLUMNS].head(trips).to_dict("records")
    payloads = [p for p in map(to_payload, rows) if _valid(p)]
    return BenchModel(tracking_uri, MODEL_NAME, str(version.version), registered, payloads, len(X), params)


def _valid(payload: dict[str, Any]) -> bool:
    try:
        Trip.model_validate(payload)
    except ValueError:
        return False
    return True


def write_level1_handoff(model: BenchModel, folder: Path) -> Path:
    """Level 1's hand-off of the same model: ``model.pkl`` (the pipeline after its trip-features step, which
    level 1's service applies itself) and ``model.json`` with its SHA-256, as ``level1 handoff`` leaves them."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.pkl"
    path.write_bytes(pickle.dumps(model.pipeline.named_steps["model"], protocol=pickle.HIGHEST_PROTOCOL))
    with path.open("rb") as f:
        sha = file_digest(f, "sha256").hexdigest()
    metadata = {"name": model.name, "version": sha[:12], "sha256": sha, "registered_as": model.uri}
    (folder / "model.json").write_text(json.dumps(metadata, indent=2) + "\n")
    return path
