"""Stage ingest: the configured months from the configured source into data/raw/."""

from __future__ import annotations

from level2.settings import Settings
from level2.stages.common import DOWNLOADS, RAW, load_params, months_of
from taxi.loader import load_month, tlc_filename, write_parquet


def run(settings: Settings) -> None:
    p = load_params(settings)["ingest"]
    RAW.mkdir(parents=True, exist_ok=True)
    for month in months_of({"ingest": p}):
        df = load_month(
            month, source=p["source"], scenario=p["scenario"], rows=int(p["rows"]), seed=int(p["seed"]),
            base_url=p["tlc_base_url"], cache_dir=DOWNLOADS,
        )  # fmt: skip
        write_parquet(df, RAW / tlc_filename(month))
        print(f"ingest: {month} -> {RAW / tlc_filename(month)} ({len(df)} rows, {p['source']})")
