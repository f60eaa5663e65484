"""Score a file of trips with the pickled model the data scientist handed over.

    python score.py --model handoff/model.pkl --input trips.parquet --output predictions.csv

Written by the app team *after* the notebook, from the note that came with ``model.pkl``: the model
reads the columns below, turns them into features with ``taxi.model.build_features`` (the same code
the notebook used, we hope) and predicts the trip duration in minutes. If the file also has dropoff
times, it prints the RMSE on the trips lasting 1-60 minutes, as the notebook did.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from taxi.model import INPUT_COLUMNS, MAX_MINUTES, MIN_MINUTES, build_features
from taxi.schema import DROPOFF, PICKUP

# What the note says the model needs (passenger_count is optional: missing means 1 passenger).
REQUIRED_COLUMNS = [c for c in INPUT_COLUMNS if c != "passenger_count"]
PREDICTION = "predicted_duration_min"
ACTUAL = "actual_duration_min"
OUTPUT_SUFFIXES = (".csv", ".parquet")


class ScoringError(Exception):
    """A problem the user can fix (wrong file, missing columns): printed without a traceback."""


def load_model(path: str | Path) -> Any:
    """Unpickle the handed-over model (a scikit-learn Pipeline over ``build_features`` output)."""
    path = Path(path)
    if not path.is_file():
        raise ScoringError(f"model file {path} not found (did the data scientist send it? look in handoff/)")
    try:
        with path.open("rb") as f:
            model = pickle.load(f)  # only ever unpickle files you trust
    except (pickle.UnpicklingError, EOFError, AttributeError, ModuleNotFoundError) as exc:
        raise ScoringError(f"{path} could not be unpickled ({type(exc).__name__}: {exc})") from None
    if not hasattr(model, "predict"):
        raise ScoringError(f"{path} holds a {type(model).__name__}, not a model with .predict()")
    return model


def read_trips(path: str | Path) -> pd.DataFrame:
    """A CSV or parquet file of trips."""
    path = Path(path)
    if not path.is_file():
        raise ScoringError(f"input file {path} not found")
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except Exception as exc:  # a file we cannot read at all: say so, in one line
        raise ScoringError(f"{path} could not be read as {path.suffix.lstrip('.') or 'parquet'}: {exc}") from None


def check_columns(trips: pd.DataFrame, source: str) -> None:
    """Refuse a file without the columns the model needs, naming every missing one."""
    missing = [c for c in REQUIRED_COLUMNS if c not in trips.columns]
    if missing:
        raise ScoringError(
            f"{source} is missing column(s) the model needs: {', '.join(missing)}\n"
            f"  the model reads: {', '.join(REQUIRED_COLUMNS)} (+ passenger_count, optional)"
        )
    if trips.empty:
        raise ScoringError(f"{source} has no trips to score")


def score(model: Any, trips: pd.DataFrame) -> pd.DataFrame:
    """The trips' model inputs, the prediction and, when dropoff times are there, the actual duration."""
    try:
        features = build_features(trips)
    except (ValueError, TypeError) as exc:  # e.g. a zone id that is empty or not a number
        raise ScoringError(f"the trips could not be turned into model features: {exc}") from None
    out = trips[[c for c in INPUT_COLUMNS if c in trips.columns]].copy()
    out[PREDICTION] = model.predict(features)
    if DROPOFF in trips.columns:
        minutes = (pd.to_datetime(trips[DROPOFF]) - pd.to_datetime(trips[PICKUP])).dt.total_seconds() / 60
        out[ACTUAL] = minutes
    return out


def rmse_within_range(predictions: pd.DataFrame) -> tuple[float, int] | None:
    """RMSE (minutes) over the trips lasting 1-60 minutes, and how many there were; None without actuals."""
    if ACTUAL not in predictions.columns:
        return None
    usable = predictions[predictions[ACTUAL].between(MIN_MINUTES, MAX_MINUTES)]
    if usable.empty:
        return None
    err = usable[PREDICTION] - usable[ACTUAL]
    return float(np.sqrt(np.mean(err**2))), len(usable)


def write_predictions(predictions: pd.DataFrame, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        predictions.to_csv(path, index=False)
    else:
        predictions.to_parquet(path, index=False)
    return path


def _output_path(value: str) -> Path:
    path = Path(value)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise argparse.ArgumentTypeError(f"must end in {' or '.join(OUTPUT_SUFFIXES)}: {value}")
    return path


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="score.py",
        description="Predict trip durations (minutes) with the handed-over model.pkl.",
    )
    parser.add_argument("--model", type=Path, default=Path("handoff/model.pkl"), help="the pickled model")
    parser.add_argument("--input", type=Path, required=True, help="trips to score (.csv or .parquet)")
    parser.add_argument(
        "--output", type=_output_path, default=Path("outputs/predictions.csv"), help="predictions (.csv or .parquet)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        model = load_model(args.model)
        trips = read_trips(args.input)
        check_columns(trips, str(args.input))
        predictions = score(model, trips)
    except ScoringError as exc:
        print(f"score.py: error: {exc}", file=sys.stderr)
        return 1
    path = write_predictions(predictions, args.output)
    print(f"scored {len(predictions)} trips from {args.input} with {args.model} -> {path}")
    result = rmse_within_range(predictions)
    if result is not None:
        rmse, n = result
        print(f"RMSE on the {n} trips lasting {MIN_MINUTES:g}-{MAX_MINUTES:g} min: {rmse:.2f} min")
    return 0
