"""Stage register: a new version in the MLflow Model Registry, tagged with its lineage and metrics.

A model already registered (the same training run: register re-ran, but train did not) is not registered
again. ``out`` (reports/registered.json) names the version either way, and says whether it is new.

A version is never half-registered: its lineage and metrics tags go in the one call that creates it, and
``out`` is written only after it. A tracking server that does not answer fails the stage with one line naming
it (StageError) and registers nothing; `dvc repro` once it is back registers the version (the runs are there).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient

from taxi.pipeline.common import check_tracking, tracking_errors, write_json


def register(run: Path, metrics: Path, out: Path, *, model_name: str, tracking_uri: str) -> dict[str, Any]:
    """Register the model of the training run recorded in ``run`` as a version of ``model_name``."""
    record = json.loads(run.read_text())
    scores = json.loads(metrics.read_text())
    check_tracking(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    query = f"name = '{model_name}' and run_id = '{record['run_id']}'"
    with tracking_errors(tracking_uri):
        existing = MlflowClient().search_model_versions(query)
        new = not existing
        if existing:
            version = min(existing, key=lambda v: int(v.version))
            run_id = record["run_id"][:8]
            print(f"register: the model of run {run_id} is already {model_name} version {version.version}")
        else:
            tags = {k: record[k] for k in ("git_commit", "data_md5", "params_hash", "train_months", "data_source")}
            tags |= {"rmse": f"{scores['rmse']:.4f}", "mae": f"{scores['mae']:.4f}"}
            version = mlflow.register_model(record["model_uri"], model_name, tags=tags)  # tags: in the same call
            print(f"register: {model_name} version {version.version} (RMSE {scores['rmse']:.3f})")
    registered = {"name": model_name, "version": int(version.version), "new": new}
    registered |= {"run_id": record["run_id"], "model_uri": record["model_uri"]}
    write_json(out, registered)
    return registered
