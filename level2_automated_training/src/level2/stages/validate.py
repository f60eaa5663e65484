"""Stage validate: structurally broken months stop the pipeline; dirty rows are counted."""

from __future__ import annotations

from typing import Any

from level2.settings import Settings
from level2.stages.common import RAW, REPORTS, VALIDATED, load_params, months_of, write_json
from taxi.loader import tlc_filename, write_parquet
from taxi.validation import DataValidationError, validate_file


def run(settings: Settings) -> None:
    """Structurally broken months stop the pipeline; dirty rows are counted in reports/validation.json."""
    params = load_params(settings)
    VALIDATED.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {}
    for month in months_of(params):
        try:
            frame, report = validate_file(RAW / tlc_filename(month), month=month)
        except DataValidationError as exc:
            raise SystemExit(f"validate: {exc}") from None
        write_parquet(frame, VALIDATED / tlc_filename(month))
        summary[month] = {"rows": report.rows, "usable": report.usable, "usable_share": report.usable / report.rows}
        print(report.summary())
    write_json(REPORTS / "validation.json", summary)
