"""Ingest: gather the configured months into data/raw/, validated, idempotently.

A month already present and valid is skipped. A month that fails validation is not used: it goes to
data/raw/rejected/ with a .reason.txt beside it saying why.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from level1.settings import Settings
from taxi.generator import generate_month
from taxi.loader import DataSourceError, fetch_month, tlc_filename, write_parquet
from taxi.validation import DataValidationError, validate_file


@dataclass
class IngestResult:
    ingested: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)


def _stage(month: str, settings: Settings, staging: Path) -> Path:
    """Put the month's file in ``staging`` (not yet validated by us)."""
    if settings.source == "tlc":
        return fetch_month(month, staging, base_url=settings.tlc_base_url)
    df = generate_month(month, rows=settings.rows, seed=settings.seed, scenario=settings.scenario)
    return write_parquet(df, staging / tlc_filename(month))


def _reject(month: str, reason: str, raw: Path, staged: Path | None) -> None:
    rejected = raw / "rejected"
    rejected.mkdir(parents=True, exist_ok=True)
    if staged is not None and staged.exists():
        os.replace(staged, rejected / staged.name)
    (rejected / f"{tlc_filename(month)}.reason.txt").write_text(reason + "\n")


def ingest(settings: Settings, echo=print) -> IngestResult:
    raw = settings.raw_dir
    raw.mkdir(parents=True, exist_ok=True)
    result = IngestResult()
    for month in settings.month_list:
        target = raw / tlc_filename(month)
        if target.exists():
            try:
                validate_file(target, month=month)
                echo(f"  {month}: {target} already there and valid, skipped")
                result.skipped.append(month)
                continue
            except DataValidationError as exc:
                _reject(month, f"the file already in {raw} was invalid:\n{exc}", raw, target)  # never left in raw/
                echo(f"  {month}: {target} is there but invalid (moved to rejected/), fetching it again")
        with tempfile.TemporaryDirectory(dir=raw, prefix=".staging-") as tmp:
            staged: Path | None = None
            try:
                staged = _stage(month, settings, Path(tmp))
                _, report = validate_file(staged, month=month)
            except (DataSourceError, DataValidationError) as exc:
                _reject(month, str(exc), raw, staged)
                echo(f"  {month}: REJECTED, not used. Reason kept in {raw / 'rejected'}:\n    {exc}")
                result.rejected[month] = str(exc)
                continue
            os.replace(staged, target)
        (raw / "rejected" / f"{target.name}.reason.txt").unlink(missing_ok=True)
        echo(f"  {month}: ingested {target} from {settings.source}: {report.rows} rows, {report.usable} usable")
        result.ingested.append(month)
    return result
