"""Stage register: a new version in the MLflow Model Registry, tagged with its lineage and metrics."""

from __future__ import annotations

import json

import mlflow

from level2.settings import Settings
from level2.stages.common import REPORTS, TRAIN_RUN, write_json


def run(settings: Settings) -> None:
    name = settings.model_name  # LEVEL2_MODEL_NAME: the same name release, status and the service use
    run = json.loads(TRAIN_RUN.read_text())
    metrics = json.loads((REPORTS / "metrics.json").read_text())
    tags = {k: run[k] for k in ("git_commit", "data_md5", "params_hash", "train_months", "data_source")}
    tags |= {"rmse": f"{metrics['rmse']:.4f}", "mae": f"{metrics['mae']:.4f}"}
    mlflow.set_tracking_uri(settings.tracking_uri)
    version = mlflow.register_model(run["model_uri"], name, tags=tags)
    write_json(
        REPORTS / "registered.json",
        {"name": name, "version": int(version.version), "run_id": run["run_id"], "model_uri": run["model_uri"]},
    )
    print(f"register: {name} version {version.version} (RMSE {metrics['rmse']:.3f}); release it with "
          f"`make release VERSION={version.version}`")  # fmt: skip
