"""Stage train: fit the raw-trip pipeline, save it, and record the run in MLflow with its lineage."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from taxi.model import build_trip_pipeline
from taxi.pipeline.common import (
    check_tracking,
    git_commit,
    md5_of,
    one_thread,
    params_hash,
    read_split,
    tracking_errors,
    write_json,
)
from taxi.pipeline.prepare import Split
from taxi.tracking import log_trip_model, save_pipeline


def train(
    data: Path, model_out: Path, run_out: Path, params: dict[str, Any], *, tracking_uri: str, experiment: str
) -> dict[str, Any]:
    """Fit on ``data`` with ``params["train"]``; save the model to ``model_out`` and the MLflow run record
    (run id, model URI, lineage) to ``run_out``. ``params`` is all of params.yaml: every group is logged.
    A tracking server that does not answer fails the stage before the fit (StageError naming it)."""
    import mlflow  # not at the top: taxi.tracking has imported skops before it (seconds faster than after)

    check_tracking(tracking_uri)
    trips, y = read_split(data)
    with one_thread():
        pipeline = build_trip_pipeline(params["train"]).fit(trips, y)
    save_pipeline(pipeline, model_out)
    lineage = {
        "git_commit": git_commit(),
        "data_md5": md5_of(data),  # = the DVC hash of the training data in dvc.lock
        "params_hash": params_hash(params["train"]),
        "train_months": Split.of(params).describe("train").replace(", ", ","),
        "data_source": f"{params['ingest']['source']}/{params['ingest']['scenario']}",
        "dvc_experiment": os.environ.get("DVC_EXP_NAME", ""),
    }
    mlflow.set_tracking_uri(tracking_uri)
    with tracking_errors(tracking_uri):
        mlflow.set_experiment(experiment)
        with mlflow.start_run(run_name=f"train-{lineage['params_hash'][:8]}", tags=lineage) as run:
            mlflow.log_params({f"train.{k}": v for k, v in params["train"].items()})
            mlflow.log_params({f"ingest.{k}": v for k, v in params["ingest"].items()})
            mlflow.log_param("train_rows", len(trips))
            with one_thread():  # MLflow predicts with the model to check its signature and input example
                info = log_trip_model(pipeline, trips, saved=model_out)
    record = {"run_id": run.info.run_id, "model_uri": info.model_uri, "model_id": info.model_id, **lineage}
    write_json(run_out, record)
    print(f"train: {len(trips)} trips, MLflow run {run.info.run_id}, model {info.model_uri}")
    return record
