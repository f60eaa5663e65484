"""Stage prepare: validated months -> train/test trips with the target (the last months held out)."""

from __future__ import annotations

import pandas as pd

from level2.settings import Settings
from level2.stages.common import PREPARED, VALIDATED, load_params, months_of
from taxi.loader import tlc_filename, write_parquet
from taxi.model import TARGET, prepare_trips


def run(settings: Settings) -> None:
    params = load_params(settings)
    months = months_of(params)
    n_test = int(params["prepare"]["test_months"])
    if not 0 < n_test < len(months):
        raise SystemExit(f"prepare: test_months must be between 1 and {len(months) - 1}; got {n_test}")
    PREPARED.mkdir(parents=True, exist_ok=True)
    for split, chosen in (("train", months[:-n_test]), ("test", months[-n_test:])):
        raw = pd.concat([pd.read_parquet(VALIDATED / tlc_filename(m)) for m in chosen], ignore_index=True)
        trips, y = prepare_trips(raw)
        write_parquet(trips.assign(**{TARGET: y}).reset_index(drop=True), PREPARED / f"{split}.parquet")
        print(f"prepare: {split} = {', '.join(chosen)}: {len(trips)} trips")
