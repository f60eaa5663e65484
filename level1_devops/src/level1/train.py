"""Train: a script (not a notebook) that fits the shared model on the ingested months and writes one
model file plus a metadata file. Nothing tracks it: the metadata file is the only record."""

from __future__ import annotations

import hashlib
import json
import pickle
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from level1.settings import Settings
from taxi.loader import tlc_filename
from taxi.model import FEATURES, INPUT_COLUMNS, TARGET, build_model, evaluate, prepare
from taxi.validation import DataValidationError, read_trips

MODEL_NAME = "trip-duration"


class TrainingDataError(RuntimeError):
    """Not enough ingested months to train and evaluate, or an ingested file that cannot be read."""


@dataclass
class TrainResult:
    model_path: Path
    metadata_path: Path
    metadata: dict[str, Any]


def sha256_of(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def metadata_path_for(model_path: Path) -> Path:
    return model_path.with_suffix(".json")


def _ingested_months(settings: Settings) -> list[str]:
    return [m for m in settings.month_list if (settings.raw_dir / tlc_filename(m)).exists()]


def train(settings: Settings) -> TrainResult:
    months = _ingested_months(settings)
    if len(months) < 2:
        raise TrainingDataError(
            f"need at least 2 ingested months in {settings.raw_dir} (one to train, the last to evaluate); "
            f"found {len(months)}: run `make ingest` first"
        )
    train_months, test_month = months[:-1], months[-1]
    try:
        frames = [read_trips(settings.raw_dir / tlc_filename(m)) for m in train_months]
        test_frame = read_trips(settings.raw_dir / tlc_filename(test_month))
    except DataValidationError as exc:
        raise TrainingDataError(f"{exc}\nrun `make ingest` again: it re-fetches or rejects broken months") from None
    X, y = prepare(pd.concat(frames, ignore_index=True))
    params = yaml.safe_load(settings.params_file.read_text()) if settings.params_file.exists() else {}
    model = build_model(params).fit(X, y)
    metrics = evaluate(model, *prepare(test_frame))

    settings.model_dir.mkdir(parents=True, exist_ok=True)
    model_path = settings.model_dir / "model.pkl"
    model_path.write_bytes(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    sha = sha256_of(model_path)
    metadata = {
        "name": MODEL_NAME,
        "version": sha[:12],
        "sha256": sha,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "inputs": INPUT_COLUMNS,
        "features": FEATURES,
        "target": f"{TARGET} (trip duration in minutes)",
        "train_months": train_months,
        "test_month": test_month,
        "train_rows": len(X),
        "params": params,
        "metrics": metrics,
        "library_versions": {
            "python": platform.python_version(),
            **{lib: version(lib) for lib in ("scikit-learn", "pandas", "numpy")},
        },
    }
    metadata_path = metadata_path_for(model_path)
    metadata_path.write_text(json.dumps(metadata, indent=2) + "\n")
    return TrainResult(model_path, metadata_path, metadata)
