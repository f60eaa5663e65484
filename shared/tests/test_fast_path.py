"""The compiled serving path gives the pipeline's answers, refuses to serve when it does not, and serves."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

import taxi.fast_path
from taxi.api_payloads import trip_payloads
from taxi.fast_path import (
    TOLERANCE_MIN,
    FastPathError,
    FastTripModel,
    check_frame,
    compile_trip_pipeline,
    fast_path_for,
    max_difference,
)
from taxi.generator import generate_month
from taxi.inference import predict_trips
from taxi.model import INPUT_COLUMNS, build_model, build_trip_pipeline, prepare, prepare_trips
from taxi.serving import SklearnModel, TripRow, batch_adapter, create_app, parse_body, row_adapter
from taxi.trip import Trip, trips_to_frame


@pytest.fixture(scope="module")
def months() -> pd.DataFrame:
    return pd.concat([generate_month(m, rows=3000, seed=i) for i, m in enumerate(["2024-01", "2024-02"])])


@pytest.fixture(scope="module")
def trip_pipeline(months):
    X, y = prepare_trips(months)
    return build_trip_pipeline({"max_iter": 60}).fit(X, y)


@pytest.fixture(scope="module")
def feature_pipeline(months):
    X, y = prepare(months)
    return build_model({"max_iter": 40, "max_leaf_nodes": 63, "learning_rate": 0.2}).fit(X, y)


def edge_trips() -> list[Trip]:
    rows = [
        (74, 42, 1.8, "2024-03-05T08:15:00", 1),
        (132, 138, 0.0, "2024-03-10T02:30:00", None),  # distance 0, the DST gap
        (1, 265, 199.9, "2024-11-03T01:30:00", 9),  # EWR to an unknown zone, the longest distance
        (264, 264, 3.0, "2024-01-01T00:00:00", 0),  # unknown zones, midnight
        (5, 6, 0.1, "2024-07-04T23:59:59-04:00", 2),  # Staten Island; an aware time
    ]
    return [Trip.model_validate(dict(zip(INPUT_COLUMNS, row, strict=True))) for row in rows]


def test_the_compiled_path_answers_exactly_what_the_pipeline_answers(trip_pipeline):
    fast = compile_trip_pipeline(trip_pipeline)
    month = generate_month("2024-05", rows=3000, seed=3)[INPUT_COLUMNS]
    expected = trip_pipeline.predict(month)
    assert np.max(np.abs(fast.predict(month) - expected)) <= TOLERANCE_MIN

    trips = edge_trips()
    frame = trips_to_frame(trips)
    one_by_one = np.array([predict_trips_one(fast, t) for t in trips])
    assert np.max(np.abs(one_by_one - trip_pipeline.predict(frame))) <= TOLERANCE_MIN
    assert np.max(np.abs(fast.predict_trips(trips * 5) - trip_pipeline.predict(trips_to_frame(trips * 5)))) <= 1e-6
    assert np.isfinite(one_by_one).all() and (one_by_one >= 0).all()


def predict_trips_one(fast: FastTripModel, trip: Trip) -> float:
    (value,) = fast.predict_trips([trip])
    return float(value)


def test_batches_get_the_same_floats_as_the_pipeline_in_blocks_and_masks_of_either_width(
    trip_pipeline, feature_pipeline
):
    """Bit for bit, not within a tolerance: the leaves are summed in scikit-learn's order (a NumPy that summed
    pairwise would show here first), over several blocks of rows, with uint32 masks (trees of up to 31 leaves)
    and uint64 masks (up to 63)."""
    month = generate_month("2024-06", rows=2 * taxi.fast_path.BLOCK_ROWS + 500, seed=11)[INPUT_COLUMNS]
    narrow = compile_trip_pipeline(trip_pipeline)
    assert narrow.trees.mask_kind is np.uint32
    assert np.array_equal(narrow.predict(month), trip_pipeline.predict(month))
    trips = [Trip.model_validate(payload) for payload in trip_payloads(month.head(800))[0]]
    assert np.array_equal(narrow.predict_trips(trips), trip_pipeline.predict(trips_to_frame(trips)))
    wide = compile_trip_pipeline(feature_pipeline)
    assert wide.trees.mask_kind is np.uint64
    assert np.array_equal(wide.predict(month), feature_pipeline.predict(prepare_inputs_frame(month)))


def prepare_inputs_frame(frame: pd.DataFrame) -> pd.DataFrame:
    from taxi.model import build_features

    return build_features(frame)


def test_a_feature_pipeline_with_wide_trees_compiles_and_checks_itself(feature_pipeline):
    fast, why = fast_path_for(feature_pipeline, features=True)
    assert fast is not None, why
    assert why.startswith("compiled") and f"{len(check_frame())} check trips" in why
    assert max_difference(feature_pipeline, fast, check_frame(), features=True) <= TOLERANCE_MIN


@pytest.mark.parametrize("kind", ["ridge", "linear_baseline"])
def test_other_model_kinds_are_served_by_the_pipeline_saying_why(months, kind):
    X, y = prepare(months)
    pipeline = build_model({"model": kind}).fit(X, y)
    with pytest.raises(FastPathError, match="only the hist_gradient_boosting model compiles"):
        compile_trip_pipeline(pipeline)
    model = SklearnModel(pipeline, {"version": "1"})
    assert model.fast_path is None
    assert model.describe()["serving_path"].startswith("scikit-learn pipeline (not compiled: only the hist_")
    http = TestClient(create_app(model))
    answer = http.post("/predict", json=edge_trips()[0].model_dump(mode="json"))
    assert answer.status_code == 200
    assert answer.json()["predictions"] == pytest.approx(list(pipeline.predict(prepare_inputs(edge_trips()[:1]))))


def prepare_inputs(trips: list[Trip]) -> pd.DataFrame:
    from taxi.model import build_features

    return build_features(trips_to_frame(trips))


def test_a_compiled_path_that_disagrees_is_refused_and_the_pipeline_serves(feature_pipeline, monkeypatch, caplog):
    """The fault is injected at the compiler's output (a zone encoding off by 0.5 min): the check must catch
    it before a single request is answered with it."""
    real = taxi.fast_path.compile_trip_pipeline

    def off_by_half_a_minute(pipeline):
        fast = real(pipeline)
        fast.features.pickup[:] += 0.5
        return FastTripModel(fast.features, fast.trees)

    monkeypatch.setattr(taxi.fast_path, "compile_trip_pipeline", off_by_half_a_minute)
    model = SklearnModel(feature_pipeline, {"version": "1"})
    assert model.fast_path is None
    assert "the compiled path differed by" in model.describe()["serving_path"]
    assert "fast path refused" in caplog.text
    trip = edge_trips()[0]
    assert predict_trips(model, [trip]) == pytest.approx(feature_pipeline.predict(prepare_inputs([trip])))


def test_the_service_answers_with_the_compiled_path_and_says_so(feature_pipeline):
    model = SklearnModel(feature_pipeline, {"version": "7"})
    assert model.fast_path is not None
    http = TestClient(create_app(model))
    assert http.get("/model").json()["serving_path"].startswith("compiled (taxi.fast_path)")
    trips = edge_trips()
    expected = feature_pipeline.predict(prepare_inputs(trips))
    single = [http.post("/predict", json=t.model_dump(mode="json")).json()["predictions"][0] for t in trips]
    batch = http.post("/predict", json=[t.model_dump(mode="json") for t in trips]).json()
    assert np.max(np.abs(np.array(single) - expected)) <= TOLERANCE_MIN
    assert np.max(np.abs(np.array(batch["predictions"]) - expected)) <= TOLERANCE_MIN
    assert batch["model_version"] == "7"


def test_the_batch_path_still_refuses_bad_bodies_clearly(feature_pipeline):
    http = TestClient(create_app(SklearnModel(feature_pipeline, {"version": "1"}), max_batch=3))
    good = edge_trips()[0].model_dump(mode="json")
    too_many = http.post("/predict", json=[good] * 4)
    assert too_many.status_code == 413 and "maximum is 3" in too_many.json()["detail"][0]["msg"]
    empty = http.post("/predict", json=[])
    assert empty.status_code == 422 and "empty" in empty.json()["detail"][0]["msg"]
    nan = http.post("/predict", content=b'[{"PULocationID": 74, "DOLocationID": 42, "trip_distance": NaN, '
                                         b'"lpep_pickup_datetime": "2024-03-05T08:15:00"}]')  # fmt: skip
    assert nan.status_code == 422 and nan.json()["detail"][0]["loc"] == ["body", 0, "trip_distance"]
    broken = http.post("/predict", content=b"[{")
    assert broken.status_code == 422 and broken.json()["detail"][0]["type"] == "json_invalid"


def test_batch_rows_follow_the_trip_rules_and_leave_time_zones_to_trip():
    """A batch is validated as TripRow objects (no Python per trip) where Trip would give the same values; a
    pickup time with a time zone is refused there and the batch is validated as Trip objects instead."""
    assert TripRow is not None  # Trip gained a rule TripRow does not know of: see serving._trip_row_class
    rows, trips = row_adapter(10), batch_adapter(10)
    good = edge_trips()[0].model_dump(mode="json")
    variants = [
        ("PULocationID", v) for v in (1, 265, 0, 266, "74", 74.0, 74.5, None)
    ] + [
        ("trip_distance", v) for v in (0, 200, 200.001, -1, "1.5", None)
    ] + [
        ("passenger_count", v) for v in (None, 0, 9, 10, 1.0, 1.5, "2")
    ] + [
        ("lpep_pickup_datetime", v)
        for v in ("2024-03-05 08:15:00", "2024-03-05", "2000-01-01T00:00:00", "1999-12-31T23:59:59.999999",
                  "2099-12-31T23:59:59.999999", "2100-01-01T00:00:00", "2024-03-05T08:15", "2024-13-01T00:00:00")
    ]  # fmt: skip
    for field, value in variants:
        body = json.dumps([good, {**good, field: value}]).encode()
        expected = _validated(trips, body)
        got = _validated(rows, body)
        assert got == expected, (field, value)
    body = json.dumps([good, {k: v for k, v in good.items() if k != "passenger_count"}]).encode()
    assert _validated(rows, body) == _validated(trips, body)

    aware = json.dumps([good, {**good, "lpep_pickup_datetime": "2024-07-04T23:59:59-04:00"}]).encode()
    assert _validated(rows, aware) is None
    parsed, status, _ = parse_body(aware, trips, 10, rows)
    assert status == 200 and all(isinstance(t, Trip) for t in parsed)
    assert parsed[1].lpep_pickup_datetime == datetime(2024, 7, 4, 23, 59, 59)  # Trip's conversion
    parsed, _, _ = parse_body(json.dumps([good, good]).encode(), trips, 10, rows)
    assert all(isinstance(t, TripRow) for t in parsed)


def _validated(adapter, body: bytes) -> list[dict] | None:
    try:
        return [{name: getattr(t, name) for name in Trip.model_fields} for t in adapter.validate_json(body)]
    except ValidationError:
        return None


def test_a_batch_with_and_without_time_zones_gets_the_pipelines_answers(trip_pipeline):
    model = _TripModel(trip_pipeline)
    http = TestClient(create_app(model))
    trips = edge_trips() * 3
    body = [t.model_dump(mode="json") for t in trips]
    expected = trip_pipeline.predict(trips_to_frame(trips))
    naive = http.post("/predict", json=[*body[:-1], {**body[-1], "lpep_pickup_datetime": "2024-07-04T23:59:59"}])
    aware = http.post("/predict", json=body)  # the last trip's time has a zone: validated as Trip objects
    assert naive.status_code == aware.status_code == 200
    assert np.array_equal(naive.json()["predictions"], expected)
    assert np.array_equal(aware.json()["predictions"], expected)


class _TripModel:
    """A raw-trip pipeline served with its fast path (what a registry model is to a service)."""

    def __init__(self, pipeline):
        self.pipeline = pipeline
        self.fast_path, self.serving_path = fast_path_for(pipeline)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.pipeline.predict(frame)

    def describe(self) -> dict:
        return {"version": "1", "serving_path": self.serving_path}
