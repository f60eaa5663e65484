"""The DVC pipeline's stages (dvc.yaml runs `level2 stage NAME` in this folder).

Each stage reads its group of params.yaml, reads its deps and writes its outs; nothing else. Train and
evaluate also record the run in MLflow (params, lineage tags, model, metrics, plots); register adds a
version to the MLflow Model Registry.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import yaml

from level2.settings import Settings
from taxi.loader import load_month, tlc_filename, write_parquet
from taxi.model import INPUT_COLUMNS, TARGET, build_trip_pipeline, evaluate, prepare_trips
from taxi.months import month_range
from taxi.tracking import load_pipeline, log_trip_model, save_pipeline
from taxi.validation import DataValidationError, validate_file

RAW, VALIDATED, PREPARED = Path("data/raw"), Path("data/validated"), Path("data/prepared")
MODEL, TRAIN_RUN = Path("models/model.skops"), Path("models/train_run.json")
REPORTS = Path("reports")


def load_params(settings: Settings) -> dict[str, Any]:
    return yaml.safe_load(settings.params_file.read_text())


def _months(params: dict[str, Any]) -> list[str]:
    return month_range(str(params["ingest"]["first_month"]), int(params["ingest"]["months"]))


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def md5_of(path: Path) -> str:
    """The hash DVC records for a file (dvc.lock `md5`)."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def params_hash(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


def git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], capture_output=True, text=True).stdout
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"
    return commit.strip() + ("-dirty" if dirty.strip() else "")


def ingest(settings: Settings) -> None:
    p = load_params(settings)["ingest"]
    RAW.mkdir(parents=True, exist_ok=True)
    for month in _months({"ingest": p}):
        df = load_month(
            month, source=p["source"], scenario=p["scenario"], rows=int(p["rows"]), seed=int(p["seed"]),
            base_url=p["tlc_base_url"], cache_dir=RAW / ".downloads",
        )  # fmt: skip
        write_parquet(df, RAW / tlc_filename(month))
        print(f"ingest: {month} -> {RAW / tlc_filename(month)} ({len(df)} rows, {p['source']})")


def validate(settings: Settings) -> None:
    """Structurally broken months stop the pipeline; dirty rows are counted in reports/validation.json."""
    params = load_params(settings)
    VALIDATED.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {}
    for month in _months(params):
        try:
            frame, report = validate_file(RAW / tlc_filename(month), month=month)
        except DataValidationError as exc:
            raise SystemExit(f"validate: {exc}") from None
        write_parquet(frame, VALIDATED / tlc_filename(month))
        summary[month] = {"rows": report.rows, "usable": report.usable, "usable_share": report.usable / report.rows}
        print(report.summary())
    _write_json(REPORTS / "validation.json", summary)


def prepare(settings: Settings) -> None:
    params = load_params(settings)
    months = _months(params)
    n_test = int(params["prepare"]["test_months"])
    if not 0 < n_test < len(months):
        raise SystemExit(f"prepare: test_months must be between 1 and {len(months) - 1}; got {n_test}")
    PREPARED.mkdir(parents=True, exist_ok=True)
    for split, chosen in (("train", months[:-n_test]), ("test", months[-n_test:])):
        raw = pd.concat([pd.read_parquet(VALIDATED / tlc_filename(m)) for m in chosen], ignore_index=True)
        trips, y = prepare_trips(raw)
        write_parquet(trips.assign(**{TARGET: y}).reset_index(drop=True), PREPARED / f"{split}.parquet")
        print(f"prepare: {split} = {', '.join(chosen)}: {len(trips)} trips")


def _split(path: Path) -> tuple[pd.DataFrame, pd.Series]:
    frame = pd.read_parquet(path)
    return frame[INPUT_COLUMNS], frame[TARGET]


def train(settings: Settings) -> None:
    params = load_params(settings)
    trips, y = _split(PREPARED / "train.parquet")
    pipeline = build_trip_pipeline(params["train"]).fit(trips, y)
    save_pipeline(pipeline, MODEL)
    lineage = {
        "git_commit": git_commit(),
        "data_md5": md5_of(PREPARED / "train.parquet"),  # = the DVC hash of the training data in dvc.lock
        "params_hash": params_hash(params["train"]),
        "train_months": ",".join(_months(params)[: -int(params["prepare"]["test_months"])]),
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
    _write_json(
        TRAIN_RUN, {"run_id": run.info.run_id, "model_uri": info.model_uri, "model_id": info.model_id, **lineage}
    )
    print(f"train: {len(trips)} trips, MLflow run {run.info.run_id}, model {info.model_uri}")


def evaluate_stage(settings: Settings) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trips, y = _split(PREPARED / "test.parquet")
    pipeline = load_pipeline(MODEL)
    metrics = evaluate(pipeline, trips, y)
    _write_json(REPORTS / "metrics.json", {k: metrics[k] for k in ("rmse", "mae", "n")})
    _write_json(REPORTS / "slices.json", metrics["slices"])  # per pickup borough

    predicted = pipeline.predict(trips)
    sample = pd.DataFrame({"actual_min": y.to_numpy(), "predicted_min": predicted}).sample(
        n=min(2000, len(y)), random_state=0
    )
    sample.round(2).to_csv(REPORTS / "predictions.csv", index=False)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.scatter(sample["actual_min"], sample["predicted_min"], s=4, alpha=0.3)
    left.plot([0, 60], [0, 60], color="black", linewidth=1)
    left.set(xlabel="actual duration (min)", ylabel="predicted (min)", title="predicted vs actual (test month)")
    residuals = sample["predicted_min"] - sample["actual_min"]
    right.hist(residuals, bins=60)
    right.set(xlabel="residual = predicted - actual (min)", ylabel="trips", title=f"RMSE {metrics['rmse']:.2f} min")
    fig.tight_layout()
    fig.savefig(REPORTS / "residuals.png", dpi=110)
    plt.close(fig)

    run = json.loads(TRAIN_RUN.read_text())
    flat = {"rmse": metrics["rmse"], "mae": metrics["mae"]}
    flat |= {f"rmse_{name.replace(' ', '_')}": s["rmse"] for name, s in metrics["slices"].items()}
    flat |= {f"mae_{name.replace(' ', '_')}": s["mae"] for name, s in metrics["slices"].items()}
    mlflow.set_tracking_uri(settings.tracking_uri)
    with mlflow.start_run(run_id=run["run_id"]):
        mlflow.log_metrics(flat, model_id=run["model_id"])
        mlflow.log_artifact(str(REPORTS / "residuals.png"), artifact_path="evaluation")
        mlflow.log_artifact(str(REPORTS / "metrics.json"), artifact_path="evaluation")
        mlflow.log_artifact(str(REPORTS / "slices.json"), artifact_path="evaluation")
    print(f"evaluate: RMSE {metrics['rmse']:.3f} min, MAE {metrics['mae']:.3f} min on {metrics['n']} test trips")


def register(settings: Settings) -> None:
    params = load_params(settings)
    name = params["register"]["model_name"]
    run = json.loads(TRAIN_RUN.read_text())
    metrics = json.loads((REPORTS / "metrics.json").read_text())
    tags = {k: run[k] for k in ("git_commit", "data_md5", "params_hash", "train_months", "data_source")}
    tags |= {"rmse": f"{metrics['rmse']:.4f}", "mae": f"{metrics['mae']:.4f}"}
    mlflow.set_tracking_uri(settings.tracking_uri)
    version = mlflow.register_model(run["model_uri"], name, tags=tags)
    _write_json(
        REPORTS / "registered.json",
        {"name": name, "version": int(version.version), "run_id": run["run_id"], "model_uri": run["model_uri"]},
    )
    print(f"register: {name} version {version.version} (RMSE {metrics['rmse']:.3f}); release it with "
          f"`make release VERSION={version.version}`")  # fmt: skip


STAGES = {
    "ingest": ingest,
    "validate": validate,
    "prepare": prepare,
    "train": train,
    "evaluate": evaluate_stage,
    "register": register,
}
