"""Stage evaluate: metrics (overall, per borough) and plots on the held-out months, logged to the same MLflow run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from taxi.model import evaluate as model_metrics
from taxi.pipeline.common import check_tracking, one_thread, read_split, tracking_errors, write_json
from taxi.tracking import load_pipeline


def _plot(sample: pd.DataFrame, rmse: float, path: Path) -> None:
    from matplotlib.figure import Figure  # not pyplot: no GUI backend, no global state, a second less to import

    fig = Figure(figsize=(11, 4.2))
    left, right = fig.subplots(1, 2)
    left.scatter(sample["actual_min"], sample["predicted_min"], s=4, alpha=0.3)
    left.plot([0, 60], [0, 60], color="black", linewidth=1)
    left.set(xlabel="actual duration (min)", ylabel="predicted (min)", title="predicted vs actual (test month)")
    residuals = sample["predicted_min"] - sample["actual_min"]
    right.hist(residuals, bins=60)
    right.set(xlabel="residual = predicted - actual (min)", ylabel="trips", title=f"RMSE {rmse:.2f} min")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def evaluate(model: Path, run: Path, data: Path, reports: Path, *, tracking_uri: str) -> dict[str, Any]:
    """Score ``model`` on ``data``; write metrics.json, slices.json, predictions.csv and residuals.png to
    ``reports`` and log them to the MLflow run recorded in ``run`` (train's output)."""
    import mlflow  # not at the top: taxi.tracking has imported skops before it (seconds faster than after)

    check_tracking(tracking_uri)
    trips, y = read_split(data)
    pipeline = load_pipeline(model)
    with one_thread():
        metrics = model_metrics(pipeline, trips, y)
        predicted = pipeline.predict(trips)
    reports.mkdir(parents=True, exist_ok=True)
    write_json(reports / "metrics.json", {k: metrics[k] for k in ("rmse", "mae", "n")})
    write_json(reports / "slices.json", metrics["slices"])  # per pickup borough

    sample = pd.DataFrame({"actual_min": y.to_numpy(), "predicted_min": predicted}).sample(
        n=min(2000, len(y)), random_state=0
    )
    sample.round(2).to_csv(reports / "predictions.csv", index=False)
    _plot(sample, metrics["rmse"], reports / "residuals.png")

    record = json.loads(run.read_text())
    flat = {"rmse": metrics["rmse"], "mae": metrics["mae"]}
    flat |= {f"rmse_{name.replace(' ', '_')}": s["rmse"] for name, s in metrics["slices"].items()}
    flat |= {f"mae_{name.replace(' ', '_')}": s["mae"] for name, s in metrics["slices"].items()}
    mlflow.set_tracking_uri(tracking_uri)
    with tracking_errors(tracking_uri), mlflow.start_run(run_id=record["run_id"]):
        mlflow.log_metrics(flat, model_id=record["model_id"])
        for name in ("residuals.png", "metrics.json", "slices.json"):
            mlflow.log_artifact(str(reports / name), artifact_path="evaluation")
    print(f"evaluate: RMSE {metrics['rmse']:.3f} min, MAE {metrics['mae']:.3f} min on {metrics['n']} test trips")
    return metrics
