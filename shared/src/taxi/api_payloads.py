"""Trips as a client sends them to ``POST /predict``: the rows the API accepts, and their JSON bodies.

    trips = api_trips(month)                   # the model inputs of the rows the API would accept
    payloads, index = trip_payloads(month)     # one JSON body a trip, and the index of the rows kept

Rows the API would refuse (a missing or out-of-range zone, distance or pickup time; a passenger count that is
not a whole number 0..9) are dropped. ``passenger_count`` may be missing (a column of NaN, or absent): it is
sent as null, as the API allows. Aware pickup times are read as New York local time, as the API does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from taxi.model import INPUT_COLUMNS
from taxi.trip import EARLIEST, LATEST, MAX_TRIP_MILES
from taxi.zones import N_ZONES


def api_trips(trips: pd.DataFrame) -> pd.DataFrame:
    """The model inputs (``INPUT_COLUMNS``) of the rows the API accepts, typed as the API gives them, with the
    original index."""
    pickup = pd.to_datetime(trips["lpep_pickup_datetime"], errors="coerce")
    if getattr(pickup.dt, "tz", None) is not None:  # aware times: New York local, as the API reads them
        pickup = pickup.dt.tz_convert("America/New_York").dt.tz_localize(None)
    pu = pd.to_numeric(trips["PULocationID"], errors="coerce")
    do = pd.to_numeric(trips["DOLocationID"], errors="coerce")
    distance = pd.to_numeric(trips["trip_distance"], errors="coerce").astype("float64")
    if "passenger_count" in trips.columns:
        passengers = pd.to_numeric(trips["passenger_count"], errors="coerce").astype("float64")
    else:
        passengers = pd.Series(np.nan, index=trips.index)
    keep = (
        pu.between(1, N_ZONES)
        & (pu % 1 == 0)
        & do.between(1, N_ZONES)
        & (do % 1 == 0)
        & distance.between(0, MAX_TRIP_MILES)
        & pickup.notna()
        & (pickup >= pd.Timestamp(EARLIEST))
        & (pickup < pd.Timestamp(LATEST))
        & (passengers.isna() | (passengers.between(0, 9) & (passengers % 1 == 0)))
    )
    frame = pd.DataFrame(
        {
            "PULocationID": pu[keep].astype("int64"),
            "DOLocationID": do[keep].astype("int64"),
            "trip_distance": distance[keep],
            "lpep_pickup_datetime": pickup[keep],
            "passenger_count": passengers[keep],
        }
    )
    return frame[INPUT_COLUMNS]


def trip_payloads(trips: pd.DataFrame) -> tuple[list[dict[str, Any]], pd.Index]:
    """Trips -> (JSON bodies of ``POST /predict``, the index of the rows kept)."""
    kept = api_trips(trips)
    payloads = [
        {
            "PULocationID": int(p),
            "DOLocationID": int(d),
            "trip_distance": float(miles),
            "lpep_pickup_datetime": t.isoformat(),
            "passenger_count": None if math.isnan(n) else int(n),
        }
        for p, d, miles, t, n in kept.itertuples(index=False, name=None)
    ]
    return payloads, kept.index
