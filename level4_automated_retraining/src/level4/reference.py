"""The monitoring reference: the champion's training trips as the service would have seen them.

Drift is measured against what the model learnt from. The DVC stage ``reference`` (after ``train``) takes the
training months' validated trips, keeps those the API accepts (``api_trips``: the ``Trip`` rules; not
filtered by duration, which a service does not know when it answers), samples at most ``rows`` of them,
writes them to ``data/reference.parquet`` and logs them to the training run as ``monitoring/reference.parquet``:
the reference travels with the model, so the monitor reads the one of whichever version is ``@champion``.

(The training split itself, ``data/prepared/train.parquet``, keeps only 1-60 minute trips: compared with
live requests, which include the trips that will turn out longer or shorter, it would show drift where
there is none.)
"""

from __future__ import annotations

from pathlib import Path
from tempfile import TemporaryDirectory

import mlflow
import pandas as pd
from mlflow import MlflowClient

from taxi.api_payloads import api_trips
from taxi.loader import tlc_filename, write_parquet
from taxi.pipeline.prepare import Split

ARTIFACT = "monitoring/reference.parquet"


class ReferenceError(LookupError):
    """No reference to monitor against: the message says which model version lacks it and what to run."""


def write_reference(
    validated: Path, out: Path, run: Path, split: Split, rows: int, seed: int, tracking_uri: str
) -> pd.DataFrame:
    """Stage ``reference``: the training split's API trips (at most ``rows``) -> ``out`` and the run of ``run``."""
    import json

    raw, _ = split.frames(lambda month: pd.read_parquet(validated / tlc_filename(month)))
    trips = api_trips(raw).reset_index(drop=True)
    if len(trips) > rows:
        trips = trips.sample(rows, random_state=seed).sort_values("lpep_pickup_datetime").reset_index(drop=True)
    write_parquet(trips, out)
    run_id = json.loads(run.read_text())["run_id"]
    MlflowClient(tracking_uri).log_artifact(run_id, str(out), Path(ARTIFACT).parent.as_posix())
    print(f"reference: {len(trips)} trips of {split.describe('train')} -> {out} and run {run_id[:8]} ({ARTIFACT})")
    return trips


def champion_reference(client: MlflowClient, name: str, alias: str = "champion") -> tuple[str, pd.DataFrame]:
    """(version, reference trips) of ``name@alias``; ReferenceError when there is no such version or it has none."""
    try:
        version = client.get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException:
        raise ReferenceError(f"no version of '{name}' has the alias '{alias}': nothing to monitor against") from None
    return str(version.version), run_reference(client, version.run_id, f"{name} v{version.version}")


# The references read in this process, by (tracking URI, run id): a run's logged reference never changes, and the
# replay monitors a window a month against the same champion's.
_READ: dict[tuple[str, str], pd.DataFrame] = {}


def run_reference(client: MlflowClient, run_id: str | None, label: str) -> pd.DataFrame:
    """The reference logged to a training run."""
    if not run_id:
        raise ReferenceError(f"{label} has no training run, so no monitoring reference")
    key = (str(client.tracking_uri), run_id)
    if key not in _READ:
        _READ[key] = _download_reference(client, run_id, label)
    return _READ[key].copy()


def _download_reference(client: MlflowClient, run_id: str, label: str) -> pd.DataFrame:
    with TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, ARTIFACT, tmp)
        except (mlflow.exceptions.MlflowException, OSError):
            raise ReferenceError(
                f"{label} (run {run_id[:8]}) has no {ARTIFACT}: it was not trained by this level's pipeline "
                "(`dvc repro` logs the reference with each training run)"
            ) from None
        return pd.read_parquet(path)
