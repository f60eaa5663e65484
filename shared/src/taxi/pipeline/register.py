"""Stage register: a new version in the MLflow Model Registry, tagged with its lineage and metrics.

A model already registered (the same training run: register re-ran, but train did not) is not registered
again. ``out`` (reports/registered.json) names the version either way, and says whether it is new.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient

from taxi.pipeline.common import write_json


def register(run: Path, metrics: Path, out: Path, *, model_name: str, tracking_uri: str) -> dict[str, Any]:
    """Register the model of the training run recorded in ``run`` as a version of ``model_name``."""
    record = json.loads(run.read_text())
    scores = json.loads(metrics.read_text())
    mlflow.set_tracking_uri(tracking_uri)
    query = f"name = '{model_name}' and run_id = '{record['run_id']}'"
    existing = MlflowClient().search_model_versions(query)
    new = not existing
    if existing:
        version = min(existing, key=lambda v: int(v.version))
        print(f"register: the model of run {record['run_id'][:8]} is already {model_name} version {version.version}")
    else:
        tags = {k: record[k] for k in ("git_commit", "data_md5", "params_hash", "train_months", "data_source")}
        tags |= {"rmse": f"{scores['rmse']:.4f}", "mae": f"{scores['mae']:.4f}"}
        version = mlflow.register_model(record["model_uri"], model_name, tags=tags)
        print(f"register: {model_name} version {version.version} (RMSE {scores['rmse']:.3f})")
    registered = {"name": model_name, "version": int(version.version), "new": new}
    registered |= {"run_id": record["run_id"], "model_uri": record["model_uri"]}
    write_json(out, registered)
    return registered
