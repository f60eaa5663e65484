"""score.py, run as the app team runs it: a subprocess on files."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from level0.score import PREDICTION, main

SCORE_SCRIPT = Path(__file__).resolve().parent.parent / "score.py"


def run_score(*args: str | Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(SCORE_SCRIPT), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_scores_a_month_with_a_sane_rmse(executed, february, tmp_path):
    _, out = executed
    predictions = tmp_path / "predictions.csv"
    done = run_score("--model", out / "model.pkl", "--input", february, "--output", predictions)
    assert done.returncode == 0, done.stderr
    assert "RMSE on the" in done.stdout

    trips = pd.read_parquet(february)
    scored = pd.read_csv(predictions)
    assert len(scored) == len(trips)
    assert scored[PREDICTION].notna().all()
    actual = (trips["lpep_dropoff_datetime"] - trips["lpep_pickup_datetime"]).dt.total_seconds() / 60
    keep = actual.between(1, 60).to_numpy()
    rmse = float(np.sqrt(np.mean((scored[PREDICTION].to_numpy()[keep] - actual.to_numpy()[keep]) ** 2)))
    assert rmse < 8, rmse
    assert f"{rmse:.2f} min" in done.stdout


def test_scores_a_csv_without_dropoff_times_to_parquet(executed, february, tmp_path, capsys):
    _, out = executed
    trips = pd.read_parquet(february).head(100).drop(columns=["lpep_dropoff_datetime", "passenger_count"])
    trips.to_csv(tmp_path / "trips.csv", index=False)
    args = ["--model", out / "model.pkl", "--input", tmp_path / "trips.csv", "--output", tmp_path / "p.parquet"]
    assert main(list(map(str, args))) == 0
    assert "RMSE" not in capsys.readouterr().out
    scored = pd.read_parquet(tmp_path / "p.parquet")
    assert len(scored) == 100 and scored[PREDICTION].between(0, 120).all()


def test_a_file_missing_columns_is_refused_naming_them(executed, february, tmp_path):
    _, out = executed
    trips = pd.read_parquet(february).head(20).drop(columns=["trip_distance", "DOLocationID"])
    trips.to_csv(tmp_path / "broken.csv", index=False)
    done = run_score("--model", out / "model.pkl", "--input", tmp_path / "broken.csv", "--output", tmp_path / "p.csv")
    assert done.returncode == 1
    assert "trip_distance" in done.stderr and "DOLocationID" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "p.csv").exists()


def test_a_missing_model_file_is_a_readable_error(february, tmp_path, capsys):
    assert main(["--model", str(tmp_path / "nope.pkl"), "--input", str(february)]) == 1
    assert "nope.pkl not found" in capsys.readouterr().err
