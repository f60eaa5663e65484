"""Validation of raw monthly trip frames.

Two kinds of problem, treated differently, as real TLC files demand:

- **structural** (fatal): an empty file, a missing required column, values that cannot be read as
  the column's type. ``DataValidationError`` lists each as "column 'X': rule".
- **dirty rows** (never fatal): trips outside 1-60 minutes, distances of 200 miles or more, zero
  distances, missing optional fields, pickups in another month... counted in the ``ValidationReport``.
  ``taxi.model.prepare`` drops the trips the service would not be asked about (``served_trips``) and
  keeps zero-distance ones: the API accepts them, so the model learns them. "usable" counts what it keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa_arrow
import pyarrow.parquet as pq

from taxi.model import served_trips
from taxi.months import parse_month
from taxi.schema import DROPOFF, GREEN_SCHEMA, PICKUP, REQUIRED_COLUMNS
from taxi.zones import N_ZONES

MAX_ERRORS_SHOWN = 10


class DataValidationError(ValueError):
    """A frame or file that is structurally broken; ``problems`` are 'column X: rule' lines."""

    def __init__(self, problems: list[str], source: str = "data"):
        self.problems = problems
        self.source = source
        shown = "\n".join(f"  - {p}" for p in problems[:MAX_ERRORS_SHOWN])
        more = f"\n  ... and {len(problems) - MAX_ERRORS_SHOWN} more" if len(problems) > MAX_ERRORS_SHOWN else ""
        super().__init__(f"{source} is not a valid green-taxi trip file:\n{shown}{more}")


@dataclass
class ValidationReport:
    """What a valid file holds: row counts and the dirty rows found, by rule."""

    source: str
    rows: int
    usable: int
    dirty: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"{self.source}: {self.rows} rows, {self.usable} usable for training ({self.usable / self.rows:.1%})"]
        lines += [f"  {count:>7} rows {rule}" for rule, count in self.dirty.items() if count]
        return "\n".join(lines)


def check_structure(df: pd.DataFrame, source: str = "data") -> pd.DataFrame:
    """Raise DataValidationError for structural problems; return the frame in the canonical dtypes.

    One pass over ``GREEN_SCHEMA`` (the one table of dtypes): each column present is cast once, and
    every value that cannot be cast is reported with its column, the rule and a few examples. Files of
    different years differ (int64 vs int32 ids, ns vs us datetimes): that is normalised, not an error.
    Columns not in the schema are kept as they are.
    """
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise DataValidationError(["the file has no rows" if df.shape[1] else "the file has no columns"], source)
    problems = [f"column '{c}': required column is missing" for c in REQUIRED_COLUMNS if c not in df.columns]
    out = df.copy()
    for column, dtype in GREEN_SCHEMA.items():
        if column not in out.columns:
            continue
        cast, column_problems = _cast(out[column], dtype, required=column in REQUIRED_COLUMNS)
        problems += [f"column '{column}': {rule}" for rule in column_problems]
        if not column_problems:
            out[column] = cast
    if problems:
        raise DataValidationError(problems, source)
    return out


def _where(series: pd.Series, bad: pd.Series) -> str:
    rows = ", ".join(str(i) for i in series.index[bad.to_numpy()][:3])
    return f" (rows {rows})" if rows else ""


def _examples(series: pd.Series, bad: pd.Series) -> str:
    return ", ".join(repr(v) for v in series[bad.to_numpy()].head(3))


def _cast(series: pd.Series, dtype: str, required: bool) -> tuple[pd.Series, list[str]]:
    """(the series in ``dtype``, the rules it breaks): values that cannot be cast, missing required values."""
    if dtype == "object":
        return series.astype("object").where(series.notna(), None), []
    problems = []
    missing = series.isna()
    if missing.any() and (required or dtype.startswith("int")):
        problems.append(f"must not be missing; {int(missing.sum())} missing value(s){_where(series, missing)}")
    if dtype.startswith("datetime64"):
        cast = _to_datetime(series)
        kind = "dates and times"
    else:
        cast = pd.to_numeric(series, errors="coerce")
        kind = "whole numbers" if dtype.startswith("int") else "numbers"
    unreadable = cast.isna() & ~missing
    if unreadable.any():
        found = f"{_examples(series, unreadable)}{_where(series, unreadable)}"
        problems.append(f"values must be {kind} ({dtype}); found {found}")
    if problems:
        return series, problems
    if dtype.startswith("int"):
        fractional = cast != cast.round()
        if fractional.any():
            return series, [f"values must be {kind}; found {_examples(series, fractional)}{_where(series, fractional)}"]
    return cast.astype(dtype), []


def _to_datetime(series: pd.Series) -> pd.Series:
    """Datetimes without a timezone (TLC files hold New York wall-clock times); unreadable values -> NaT."""
    if not pd.api.types.is_datetime64_any_dtype(series):
        try:
            series = pd.to_datetime(series, errors="coerce", format="mixed")
        except (ValueError, TypeError):  # mixed time zones: read as UTC, then drop it like the others
            series = pd.to_datetime(series, errors="coerce", format="mixed", utc=True)
    if getattr(series.dt, "tz", None) is not None:
        series = series.dt.tz_localize(None)
    return series


def dirty_rows(df: pd.DataFrame, month: str | None = None) -> dict[str, int]:
    """Count the dirty rows of a structurally valid frame, by rule (rows may break several rules)."""
    minutes = (df[DROPOFF] - df[PICKUP]).dt.total_seconds() / 60
    counts = {
        "with dropoff before pickup": int((minutes < 0).sum()),
        "lasting under 1 minute": int(minutes.between(0, 1, inclusive="left").sum()),
        "lasting over 60 minutes": int((minutes > 60).sum()),
        "with zero or negative trip_distance": int((df["trip_distance"] <= 0).sum()),
        "with trip_distance over 200 miles": int((df["trip_distance"] >= 200).sum()),
        "with a zone id outside 1..265": int(
            (~df["PULocationID"].between(1, N_ZONES) | ~df["DOLocationID"].between(1, N_ZONES)).sum()
        ),
    }
    if "passenger_count" in df.columns:
        counts["with passenger_count missing"] = int(df["passenger_count"].isna().sum())
    if month is not None:
        period = parse_month(month)
        counts[f"with a pickup outside {month}"] = int((df[PICKUP].dt.to_period("M") != period).sum())
    return counts


def validate_frame(
    df: pd.DataFrame, *, source: str = "data", month: str | None = None
) -> tuple[pd.DataFrame, ValidationReport]:
    """Structural check (fatal) + dirty-row summary (never fatal). Returns the normalised frame."""
    frame = check_structure(df, source)
    report = ValidationReport(source, rows=len(frame), usable=len(served_trips(frame)), dirty=dirty_rows(frame, month))
    return frame, report


def read_trips(path: str | Path) -> pd.DataFrame:
    """Read a parquet (or .csv) trip file; a clear DataValidationError for empty or unreadable files."""
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise DataValidationError(["file does not exist"], source)
    if path.stat().st_size == 0:
        raise DataValidationError(["the file is empty (0 bytes)"], source)
    if path.suffix.lower() == ".csv":
        try:
            return pd.read_csv(path)
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataValidationError([f"cannot be read as CSV: {exc}"], source) from None
    try:
        return pq.read_table(path).to_pandas()
    except (pa_arrow.ArrowInvalid, OSError) as exc:
        raise DataValidationError([f"cannot be read as parquet: {exc}"], source) from None


def validate_file(path: str | Path, month: str | None = None) -> tuple[pd.DataFrame, ValidationReport]:
    """Read and validate one trip file."""
    return validate_frame(read_trips(path), source=str(path), month=month)
