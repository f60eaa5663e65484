"""Stage train: fit the raw-trip pipeline, save it, and record the run in MLflow with its lineage."""

from __future__ import annotations

import os

import mlflow

from level2.settings import Settings
from level2.stages.common import (
    MODEL,
    PREPARED,
    TRAIN_RUN,
    git_commit,
    load_params,
    md5_of,
    months_of,
    params_hash,
    read_split,
    write_json,
)
from taxi.model import build_trip_pipeline
from taxi.tracking import log_trip_model, save_pipeline


def run(settings: Settings) -> None:
    params = load_params(settings)
    trips, y = read_split(PREPARED / "train.parquet")
    pipeline = build_trip_pipeline(params["train"]).fit(trips, y)
    save_pipeline(pipeline, MODEL)
    lineage = {
        "git_commit": git_commit(),
        "data_md5": md5_of(PREPARED / "train.parquet"),  # = the DVC hash of the training data in dvc.lock
        "params_hash": params_hash(params["train"]),
        "train_months": ",".join(months_of(params)[: -int(params["prepare"]["test_months"])]),
        "data_source": f"{params['ingest']['source']}/{params['ingest']['scenario']}",
        "dvc_experiment": os.environ.get("DVC_EXP_NAME", ""),
    }
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_experiment(settings.experiment)
    with mlflow.start_run(run_name=f"train-{lineage['params_hash'][:8]}", tags=lineage) as run:
        mlflow.log_params({f"train.{k}": v for k, v in params["train"].items()})
        mlflow.log_params({f"ingest.{k}": v for k, v in params["ingest"].items()})
        mlflow.log_param("train_rows", len(trips))
        info = log_trip_model(pipeline, trips)
    write_json(
        TRAIN_RUN, {"run_id": run.info.run_id, "model_uri": info.model_uri, "model_id": info.model_id, **lineage}
    )
    print(f"train: {len(trips)} trips, MLflow run {run.info.run_id}, model {info.model_uri}")
