"""The TLC green-taxi trip record schema, as in the official monthly parquet files (2024)."""

from __future__ import annotations

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

# What the model reads from a trip: the inputs of every API (re-exported by taxi.model). Here, with no import,
# so the request model (taxi.trip) and settings can name them without importing scikit-learn.
INPUT_COLUMNS = ["PULocationID", "DOLocationID", "trip_distance", "lpep_pickup_datetime", "passenger_count"]
