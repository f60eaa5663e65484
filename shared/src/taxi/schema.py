"""The TLC green-taxi trip record schema, as in the official monthly parquet files (2024)."""

from __future__ import annotations

import pandas as pd

# Column -> pandas dtype of the 2024 official green files. Nullable integer-like columns
# (RatecodeID, passenger_count, payment_type, trip_type) are float64 there, as here.
GREEN_SCHEMA: dict[str, str] = {
    "VendorID": "int32",
    "lpep_pickup_datetime": "datetime64[us]",
    "lpep_dropoff_datetime": "datetime64[us]",
    "store_and_fwd_flag": "object",
    "RatecodeID": "float64",
    "PULocationID": "int32",
    "DOLocationID": "int32",
    "passenger_count": "float64",
    "trip_distance": "float64",
    "fare_amount": "float64",
    "extra": "float64",
    "mta_tax": "float64",
    "tip_amount": "float64",
    "tolls_amount": "float64",
    "ehail_fee": "float64",
    "improvement_surcharge": "float64",
    "total_amount": "float64",
    "payment_type": "float64",
    "trip_type": "float64",
    "congestion_surcharge": "float64",
}

GREEN_COLUMNS: list[str] = list(GREEN_SCHEMA)

# The columns the model needs; a file without them is structurally broken.
REQUIRED_COLUMNS: list[str] = [
    "lpep_pickup_datetime",
    "lpep_dropoff_datetime",
    "PULocationID",
    "DOLocationID",
    "trip_distance",
]

PICKUP = "lpep_pickup_datetime"
DROPOFF = "lpep_dropoff_datetime"


def normalise_dtypes(df: pd.DataFrame) -> pd.DataFrame:
    """Cast a raw frame to the canonical dtypes (files of different years differ: int64 vs
    int32 ids, ns vs us datetimes). Columns not in the schema are kept as they are.

    Raises ValueError naming the column when a value cannot be converted.
    """
    out = df.copy()
    for column, dtype in GREEN_SCHEMA.items():
        if column not in out.columns:
            continue
        try:
            out[column] = _cast(out[column], dtype)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"column '{column}': cannot convert to {dtype} ({exc})") from None
    return out


def _cast(series: pd.Series, dtype: str) -> pd.Series:
    if dtype.startswith("datetime64"):
        if not pd.api.types.is_datetime64_any_dtype(series):
            series = pd.to_datetime(series, errors="raise")
        if getattr(series.dt, "tz", None) is not None:
            series = series.dt.tz_localize(None)
        return series.astype(dtype)
    if dtype == "object":
        return series.astype("object").where(series.notna(), None)
    if dtype.startswith("int"):
        if series.isna().any():
            raise ValueError("contains missing values")
        numeric = pd.to_numeric(series, errors="raise")
        if not (numeric == numeric.round()).all():
            raise ValueError("contains non-integer values")
        return numeric.astype(dtype)
    return pd.to_numeric(series, errors="raise").astype(dtype)
