"""Stage prepare: validated months -> train/test trips with the target (the newest trips held out).

Two ways to hold out the newest trips (params.yaml ``prepare``, one of them):

- ``test_months: N``: the last N months are the test set (levels 2 and 3: a model trained on January is
  tested on February);
- ``test_days: D``: the trips picked up in the last D days of the last month are the test set, everything
  before them trains (level 4: a model retrained after the world changed must learn from the newest month,
  so it cannot give that whole month to the test set).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from taxi.loader import tlc_filename, write_parquet
from taxi.model import TARGET, prepare_trips
from taxi.months import parse_month
from taxi.pipeline.common import StageError, months_of

PICKUP = "lpep_pickup_datetime"


def split_months(months: list[str], test_months: int) -> tuple[list[str], list[str]]:
    """(train months, test months): the last ``test_months`` are held out."""
    if not 0 < test_months < len(months):
        raise StageError(f"test_months must be between 1 and {len(months) - 1}; got {test_months}")
    return months[:-test_months], months[-test_months:]


@dataclass(frozen=True)
class Split:
    """Which of the pipeline's months train and which trips test (see module doc)."""

    months: list[str]
    test_months: int = 0
    test_days: int = 0

    @classmethod
    def of(cls, params: dict[str, Any]) -> Split:
        """The split of params.yaml (``ingest`` months, ``prepare`` test_months or test_days)."""
        prepare = params.get("prepare") or {}
        months = months_of(params["ingest"])
        if ("test_months" in prepare) == ("test_days" in prepare):
            raise StageError("give exactly one of test_months (whole months) or test_days (the newest days)")
        if "test_days" in prepare:
            days = int(prepare["test_days"])
            if not 1 <= days <= 20:
                raise StageError(f"test_days must be between 1 and 20 (a month keeps trips to train on); got {days}")
            return cls(months, test_days=days)
        split_months(months, int(prepare["test_months"]))  # checks the range
        return cls(months, test_months=int(prepare["test_months"]))

    @property
    def cutoff(self) -> pd.Timestamp | None:
        """With ``test_days``: the first pickup time of the test set."""
        if not self.test_days:
            return None
        return (parse_month(self.months[-1]) + 1).start_time - pd.Timedelta(days=self.test_days)

    @property
    def train_months(self) -> list[str]:
        """The months that give training trips."""
        return self.months if self.test_days else split_months(self.months, self.test_months)[0]

    @property
    def held_out_months(self) -> list[str]:
        """The months that give test trips."""
        return self.months[-1:] if self.test_days else split_months(self.months, self.test_months)[1]

    def describe(self, part: str = "train") -> str:
        """Where ``part`` (train or test) comes from: ``2024-01, 2024-02 before 2024-02-23`` (a lineage tag)."""
        months = self.train_months if part == "train" else self.held_out_months
        if not self.test_days:
            return ", ".join(months)
        return f"{', '.join(months)} {'before' if part == 'train' else 'from'} {self.cutoff:%Y-%m-%d}"

    def frames(self, read_month) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(train, test) raw trips, ``read_month(month)`` giving a month's validated trips."""
        train = pd.concat([read_month(m) for m in self.train_months], ignore_index=True)
        if not self.test_days:
            test = pd.concat([read_month(m) for m in self.held_out_months], ignore_index=True)
            return train, test
        newest = pd.to_datetime(train[PICKUP]) >= self.cutoff
        return train[~newest].reset_index(drop=True), train[newest].reset_index(drop=True)


def prepare(validated: Path, out: Path, split: Split) -> dict[str, Path]:
    """Write ``out``/train.parquet and ``out``/test.parquet from the months' validated files."""
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    frames = split.frames(lambda month: pd.read_parquet(validated / tlc_filename(month)))
    for name, raw in zip(("train", "test"), frames, strict=True):
        if raw.empty:
            raise StageError(f"the {name} set is empty: no trips in {split.describe(name)}")
        trips, y = prepare_trips(raw)
        written[name] = write_parquet(trips.assign(**{TARGET: y}).reset_index(drop=True), out / f"{name}.parquet")
        print(f"prepare: {name} = {split.describe(name)}: {len(trips)} trips")
    return written
