"""Stage prepare: validated months -> train/test trips with the target (the last months held out)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from taxi.loader import tlc_filename, write_parquet
from taxi.model import TARGET, prepare_trips
from taxi.pipeline.common import StageError


def split_months(months: list[str], test_months: int) -> tuple[list[str], list[str]]:
    """(train months, test months): the last ``test_months`` are held out."""
    if not 0 < test_months < len(months):
        raise StageError(f"test_months must be between 1 and {len(months) - 1}; got {test_months}")
    return months[:-test_months], months[-test_months:]


def prepare(validated: Path, out: Path, months: list[str], test_months: int) -> dict[str, Path]:
    """Write ``out``/train.parquet and ``out``/test.parquet from the months' validated files."""
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, chosen in zip(("train", "test"), split_months(months, test_months), strict=True):
        raw = pd.concat([pd.read_parquet(validated / tlc_filename(m)) for m in chosen], ignore_index=True)
        trips, y = prepare_trips(raw)
        written[split] = write_parquet(trips.assign(**{TARGET: y}).reset_index(drop=True), out / f"{split}.parquet")
        print(f"prepare: {split} = {', '.join(chosen)}: {len(trips)} trips")
    return written
