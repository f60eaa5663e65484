"""Stage ingest: the configured months from the configured source into the raw folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from taxi.loader import load_month, tlc_filename, write_parquet
from taxi.pipeline.common import months_of


def ingest(params: dict[str, Any], out: Path, downloads: Path) -> list[Path]:
    """Write each month of ``params`` (params.yaml `ingest`) to ``out``; the tlc source keeps the files it
    fetched in ``downloads`` (outside the outputs DVC replaces) and reuses them."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for month in months_of(params):
        df = load_month(
            month, source=params["source"], scenario=params["scenario"], rows=int(params["rows"]),
            seed=int(params["seed"]), base_url=params["tlc_base_url"], cache_dir=downloads,
        )  # fmt: skip
        written.append(write_parquet(df, out / tlc_filename(month)))
        print(f"ingest: {month} -> {written[-1]} ({len(df)} rows, {params['source']})")
    return written
