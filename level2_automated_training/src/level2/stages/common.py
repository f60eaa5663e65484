"""What the stages share: the paths of dvc.yaml, params.yaml, hashes for lineage."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from level2.settings import Settings
from taxi.model import INPUT_COLUMNS, TARGET
from taxi.months import month_range

RAW, VALIDATED, PREPARED = Path("data/raw"), Path("data/validated"), Path("data/prepared")
DOWNLOADS = Path("data/downloads")  # tlc source: fetched files, reused (outside the outputs DVC replaces)
MODEL, TRAIN_RUN = Path("models/model.skops"), Path("models/train_run.json")
REPORTS = Path("reports")


def load_params(settings: Settings) -> dict[str, Any]:
    if not settings.params_file.exists():
        sys.exit(f"{settings.params_file} not found: run the stages with `dvc repro` in the level folder")
    return yaml.safe_load(settings.params_file.read_text())


def months_of(params: dict[str, Any]) -> list[str]:
    return month_range(str(params["ingest"]["first_month"]), int(params["ingest"]["months"]))


def write_json(path: Path, data: Any) -> None:
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
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "."], capture_output=True, text=True
        ).stdout
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"
    return commit.strip() + ("-dirty" if dirty.strip() else "")


def read_split(path: Path) -> tuple[pd.DataFrame, pd.Series]:
    frame = pd.read_parquet(path)
    return frame[INPUT_COLUMNS], frame[TARGET]
