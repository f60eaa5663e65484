"""A batch of validated trips as columns: what the compiled model reads (``taxi.fast_path``) and what level 4
keeps of every request (``level4.prediction_log``), built once per request.

    columns = TripColumns.of(trips)      # taxi.trip.Trip objects, or anything with their attributes (TripRow)
    columns.pickup                       # datetime64[us]: the pickups' New York local wall-clock times
    columns.hour, columns.weekday        # the model's time features, computed from it with numpy

One C-level pass per attribute (``attrgetter`` over ``map``), no per-trip Python; the pickup times are converted
by pandas' datetime parser (a plain loop for a handful of trips, where building an index costs more).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

import numpy as np
import pandas as pd

_PU, _DO, _DISTANCE = attrgetter("PULocationID"), attrgetter("DOLocationID"), attrgetter("trip_distance")
_PICKUP, _PASSENGERS = attrgetter("lpep_pickup_datetime"), attrgetter("passenger_count")
EPOCH, MICROSECOND = datetime(1970, 1, 1), timedelta(microseconds=1)  # pickups count microseconds from EPOCH
_FEW = 32  # below this many trips, a Python loop converts the pickups faster than a pandas index
_THURSDAY = 3  # 1970-01-01's weekday (Monday = 0, as datetime.weekday counts)


def pickup_times(pickups: Sequence[datetime]) -> np.ndarray:
    """Naive datetimes -> ``datetime64[us]`` with the same wall-clock times."""
    if len(pickups) < _FEW:
        return np.array([(p - EPOCH) // MICROSECOND for p in pickups], dtype=np.int64).view("datetime64[us]")
    return pd.DatetimeIndex(pickups).as_unit("us").to_numpy()


@dataclass(frozen=True, slots=True)
class TripColumns:
    """The trips' inputs, one array each (in the trips' order)."""

    PULocationID: np.ndarray  # int64 zone ids
    DOLocationID: np.ndarray
    trip_distance: np.ndarray  # float64 miles
    pickup: np.ndarray  # datetime64[us], naive New York local time
    passenger_count: np.ndarray  # float64, NaN where the trip gave none

    @classmethod
    def of(cls, trips: Sequence[Any]) -> TripColumns:
        n = len(trips)
        return cls(
            np.fromiter(map(_PU, trips), np.int64, n),
            np.fromiter(map(_DO, trips), np.int64, n),
            np.fromiter(map(_DISTANCE, trips), np.float64, n),
            pickup_times(list(map(_PICKUP, trips))),
            np.array(list(map(_PASSENGERS, trips)), dtype=np.float64),  # None -> NaN
        )

    def __len__(self) -> int:
        return len(self.PULocationID)

    @property
    def hour(self) -> np.ndarray:
        """The pickup hour, 0..23 (float64, as the model takes it)."""
        hours = self.pickup.astype("datetime64[h]").astype(np.int64)
        return (hours % 24).astype(np.float64)

    @property
    def weekday(self) -> np.ndarray:
        """The pickup weekday, Monday = 0 (float64, as the model takes it)."""
        days = self.pickup.astype("datetime64[D]").astype(np.int64)
        return ((days + _THURSDAY) % 7).astype(np.float64)
