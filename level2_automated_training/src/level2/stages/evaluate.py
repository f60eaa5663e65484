"""Stage evaluate: metrics (overall, per borough) and plots on the held-out months, logged to the same MLflow run."""

from __future__ import annotations

import json

import mlflow
import pandas as pd

from level2.settings import Settings
from level2.stages.common import MODEL, PREPARED, REPORTS, TRAIN_RUN, read_split, write_json
from taxi.model import evaluate
from taxi.tracking import load_pipeline


def run(settings: Settings) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trips, y = read_split(PREPARED / "test.parquet")
    pipeline = load_pipeline(MODEL)
    metrics = evaluate(pipeline, trips, y)
    write_json(REPORTS / "metrics.json", {k: metrics[k] for k in ("rmse", "mae", "n")})
    write_json(REPORTS / "slices.json", metrics["slices"])  # per pickup borough

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
