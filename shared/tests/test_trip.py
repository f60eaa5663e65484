from datetime import datetime

import pytest
from pydantic import ValidationError

from taxi.model import build_features
from taxi.trip import Trip, trips_to_frame

GOOD = {"PULocationID": 74, "DOLocationID": 42, "trip_distance": 1.8, "lpep_pickup_datetime": "2024-03-05T08:15:00"}


def test_trip_to_features():
    frame = trips_to_frame([Trip(**GOOD), Trip(**{**GOOD, "passenger_count": 2})])
    features = build_features(frame)
    assert list(features["passenger_count"]) == [1.0, 2.0]
    assert features["pickup_hour"].iloc[0] == 8


def test_aware_times_become_new_york_local():
    trip = Trip(**{**GOOD, "lpep_pickup_datetime": "2024-03-05T13:15:00Z"})
    assert trip.lpep_pickup_datetime == datetime(2024, 3, 5, 8, 15)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"trip_distance": -1}, "trip_distance"),
        ({"trip_distance": float("nan")}, "trip_distance"),
        ({"trip_distance": float("inf")}, "trip_distance"),
        ({"trip_distance": "far"}, "trip_distance"),
        ({"PULocationID": 300}, "PULocationID"),
        ({"DOLocationID": 0}, "DOLocationID"),
        ({"lpep_pickup_datetime": "yesterday"}, "lpep_pickup_datetime"),
        ({"passenger_count": 40}, "passenger_count"),
        ({"lpep_pickup_datetime": "0001-01-01T00:00:00"}, "lpep_pickup_datetime"),
        ({"lpep_pickup_datetime": "2300-01-01T00:00:00"}, "lpep_pickup_datetime"),
        ({"lpep_pickup_datetime": "0001-01-01T00:00:00+14:00"}, "lpep_pickup_datetime"),
        ({"lpep_pickup_datetime": "9999-12-31T23:00:00-12:00"}, "lpep_pickup_datetime"),
    ],
)
def test_bad_trips_name_the_field(change, field):
    with pytest.raises(ValidationError) as info:
        Trip(**{**GOOD, **change})
    assert info.value.errors()[0]["loc"] == (field,)
