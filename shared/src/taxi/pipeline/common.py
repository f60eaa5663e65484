"""What the stages share: reading params.yaml, writing JSON, hashes for lineage. (Paths are not here:
dvc.yaml passes each stage its inputs and outputs as arguments.)"""

from __future__ import annotations

import hashlib
import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from taxi.model import TARGET
from taxi.months import month_range
from taxi.schema import INPUT_COLUMNS


class StageError(RuntimeError):
    """A stage cannot run: a missing input or a parameter out of range. The message says which."""


def unreachable(url: str, timeout: float = 5.0) -> str | None:
    """Why nothing answers HTTP at ``url`` (connection refused, unknown host, no answer in ``timeout`` s), or None
    when something does, whatever its status (what answers is then the job of its own client)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None
    except urllib.error.URLError as exc:
        return str(getattr(exc.reason, "strerror", None) or exc.reason)
    except OSError as exc:  # a timeout while reading, a reset connection
        return str(exc) or type(exc).__name__


def check_tracking(uri: str, setting: str = "the tracking URI") -> None:
    """StageError naming ``uri`` when it is an MLflow tracking server that does not answer (its /health), so a
    stage fails in seconds, before its work, instead of after MLflow's minutes of retries. ``setting``: where the
    URI comes from (e.g. LEVEL2_TRACKING_URI), for the message. Other URIs (sqlite, file) are not checked."""
    if not uri.startswith(("http://", "https://")):
        return
    reason = unreachable(uri.rstrip("/") + "/health")
    if reason:
        raise StageError(
            f"the MLflow tracking server at {uri} is not reachable ({reason}): start it, or set {setting} to one"
            " that runs, then run the pipeline again (`dvc repro` re-runs only what did not finish)"
        )


@contextmanager
def one_thread() -> Iterator[None]:
    """Fit and predict on one thread (OpenMP and BLAS) while the block runs. The stages share 2 cores with the
    service and Prefect's server: HistGradientBoosting's OpenMP threads, which spin while they wait for each
    other, then fight those processes for a core (a 2-second fit took 40 s on a busy machine), while one thread
    fits this pipeline as fast and to the same model (identical predictions: checked)."""
    import sklearn.ensemble  # noqa: F401  (loads OpenMP: threadpoolctl limits the libraries loaded already)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@contextmanager
def tracking_errors(uri: str) -> Iterator[None]:
    """Turn a failure talking to the MLflow tracking store at ``uri`` into one StageError line naming it."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        first = next((line for line in str(exc.message).splitlines() if line.strip()), type(exc).__name__)
        raise StageError(f"MLflow at {uri} failed: {first[:300]}") from None


def load_params(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise StageError(f"{path} not found: run the stages with `dvc repro` in the level folder")
    return yaml.safe_load(path.read_text())


def months_of(ingest_params: dict[str, Any]) -> list[str]:
    """The months the pipeline works on: params.yaml `ingest.first_month` and the `ingest.months` after it, less
    the months in `ingest.exclude_months` (quarantined: level 4 never trains on a month with a broken feed)."""
    months = month_range(str(ingest_params["first_month"]), int(ingest_params["months"]))
    excluded = {str(m) for m in ingest_params.get("exclude_months") or []}
    unknown = sorted(excluded - set(months))
    if unknown:
        raise StageError(f"ingest.exclude_months: {', '.join(unknown)} not among the months {months[0]}..{months[-1]}")
    kept = [m for m in months if m not in excluded]
    if not kept:
        raise StageError(f"ingest.exclude_months excludes every month of {months[0]}..{months[-1]}: nothing to train")
    return kept


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
