"""The request model every API uses: one trip, as a client knows it at pickup time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from taxi.schema import INPUT_COLUMNS
from taxi.zones import N_ZONES

MAX_TRIP_MILES = 200.0
DEFAULT_MAX_BATCH = 1000  # trips in one POST /predict (413 above); here so settings need not import the web stack
NEW_YORK = ZoneInfo("America/New_York")
EARLIEST, LATEST = datetime(2000, 1, 1), datetime(2100, 1, 1)  # plausible pickups, well inside pandas' range


class Trip(BaseModel):
    """A trip to predict the duration of. Field names are the TLC column names."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "PULocationID": 74,
                    "DOLocationID": 42,
                    "trip_distance": 1.8,
                    "lpep_pickup_datetime": "2024-03-05T08:15:00",
                    "passenger_count": 1,
                }
            ]
        }
    )

    PULocationID: int = Field(ge=1, le=N_ZONES, description="pickup TLC zone id (1..265)")
    DOLocationID: int = Field(ge=1, le=N_ZONES, description="dropoff TLC zone id (1..265)")
    trip_distance: float = Field(
        ge=0, le=MAX_TRIP_MILES, allow_inf_nan=False, description="trip distance in miles (0..200)"
    )
    lpep_pickup_datetime: datetime = Field(
        description="pickup time, ISO 8601 (local New York time), between 2000-01-01 and 2100-01-01"
    )
    passenger_count: int | None = Field(default=None, ge=0, le=9, description="passengers (optional)")

    @field_validator("lpep_pickup_datetime")
    @classmethod
    def _new_york_local(cls, value: datetime) -> datetime:
        """TLC times are naive New York local times; an aware time is converted to that."""
        if value.tzinfo:
            try:
                value = value.astimezone(NEW_YORK).replace(tzinfo=None)
            except (OverflowError, ValueError):
                raise ValueError("cannot be converted to New York time") from None
        if not EARLIEST <= value < LATEST:
            raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
        return value


def trips_to_frame(trips: Sequence[Trip]) -> pd.DataFrame:
    """Trips -> a frame with the model's input columns (what ``taxi.model.build_features`` reads)."""
    frame = pd.DataFrame([t.model_dump() for t in trips], columns=INPUT_COLUMNS)
    frame["lpep_pickup_datetime"] = pd.to_datetime(frame["lpep_pickup_datetime"], utc=False)
    frame["passenger_count"] = frame["passenger_count"].astype("float64")
    return frame
