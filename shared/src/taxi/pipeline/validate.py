"""Stage validate: structurally broken months stop the pipeline; dirty rows are counted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from taxi.loader import tlc_filename, write_parquet
from taxi.pipeline.common import write_json
from taxi.validation import validate_file


def validate(raw: Path, out: Path, report: Path, months: list[str]) -> dict[str, Any]:
    """Validate each month's file in ``raw`` into ``out``; the per-month row counts go to ``report``.

    A structurally broken month raises taxi.validation.DataValidationError (the pipeline stops there)."""
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {}
    for month in months:
        frame, checked = validate_file(raw / tlc_filename(month), month=month)
        write_parquet(frame, out / tlc_filename(month))
        summary[month] = {"rows": checked.rows, "usable": checked.usable, "usable_share": checked.usable / checked.rows}
        print(checked.summary())
    write_json(report, summary)
    return summary
