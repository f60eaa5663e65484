"""Validation of raw monthly trip frames.

Two kinds of problem, treated differently, as real TLC files demand:

- **structural** (fatal): an empty file, a missing required column, values that cannot be read as
  the column's type. ``DataValidationError`` lists each as "column 'X': rule".
- **dirty rows** (never fatal): trips outside 1-60 minutes, zero distances, missing optional fields,
  pickups in another month... counted in the ``ValidationReport``; ``taxi.model.prepare`` drops them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.parquet as pq
from pandera.errors import SchemaError, SchemaErrors

from taxi.model import clean_trips
from taxi.months import parse_month
from taxi.schema import DROPOFF, GREEN_SCHEMA, PICKUP, REQUIRED_COLUMNS, normalise_dtypes
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


def _pandera_type(dtype: str) -> str:
    if dtype.startswith("datetime64"):
        return "datetime64[ns]"
    if dtype.startswith("int"):
        return "int64"
    return "str" if dtype == "object" else dtype


_STRUCTURE = pa.DataFrameSchema(
    {
        column: pa.Column(
            _pandera_type(dtype),
            nullable=column not in REQUIRED_COLUMNS and not dtype.startswith("int"),
            coerce=True,
            required=column in REQUIRED_COLUMNS,
        )
        for column, dtype in GREEN_SCHEMA.items()
    },
    strict=False,
)


def check_structure(df: pd.DataFrame, source: str = "data") -> pd.DataFrame:
    """Raise DataValidationError for structural problems; return the frame in canonical dtypes."""
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise DataValidationError(["the file has no rows" if df.shape[1] else "the file has no columns"], source)
    try:
        _STRUCTURE.validate(df, lazy=True)
    except SchemaErrors as exc:
        raise DataValidationError(_describe(exc.failure_cases), source) from None
    except SchemaError as exc:  # pragma: no cover - lazy validation collects into SchemaErrors
        raise DataValidationError([str(exc)], source) from None
    try:
        return normalise_dtypes(df)
    except ValueError as exc:
        raise DataValidationError([str(exc)], source) from None


def _describe(cases: pd.DataFrame) -> list[str]:
    """pandera failure cases -> one readable line per (column, rule)."""
    problems: list[str] = []
    reported: set[str] = set()
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
        if check == "column_in_dataframe":
            problems += [f"column '{name}': required column is missing" for name in group["failure_case"]]
            continue
        if str(check).startswith("dtype") and column in reported:
            continue  # already explained by the failed conversion
        examples = ", ".join(repr(v) for v in group["failure_case"].head(3))
        where = group["index"].dropna().head(3).astype(int).tolist()
        rows = f" (rows {', '.join(map(str, where))})" if where else ""
        if str(check).startswith("coerce_dtype"):
            wanted = str(check).split("'")[1] if "'" in str(check) else str(check)
            rule = f"values must be of type {wanted}; found {examples}{rows}"
        elif check == "not_nullable":
            rule = f"must not be missing; {len(group)} missing value(s){rows}"
        elif str(check).startswith("dtype"):
            rule = f"wrong type: {examples}"
        else:
            rule = f"failed {check}: {examples}{rows}"
        reported.add(column)
        problems.append(f"column '{column}': {rule}")
    return problems


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
    report = ValidationReport(source, rows=len(frame), usable=len(clean_trips(frame)), dirty=dirty_rows(frame, month))
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
