import logging

import numpy as np
import pandas as pd
import pytest

from taxi.generator import generate_month
from taxi.model import (
    INPUT_COLUMNS,
    MAX_MILES,
    build_features,
    build_model,
    build_trip_pipeline,
    clean_trips,
    evaluate,
    format_metrics,
    prepare,
    prepare_trips,
    served_trips,
)
from taxi.months import month_range
from taxi.trip import MAX_TRIP_MILES
from taxi.zones import BOROUGHS

log = logging.getLogger(__name__)


def _months(start: str, count: int, scenario: str = "drift", rows: int = 8000) -> pd.DataFrame:
    return pd.concat(
        [generate_month(m, rows=rows, scenario=scenario) for m in month_range(start, count)], ignore_index=True
    )


def test_prepare_keeps_the_served_population_and_builds_features(march):
    X, y = prepare(march)
    assert y.between(1, 60).all() and len(y) == len(X)
    assert 0.9 < len(y) / len(march) < 0.99
    assert X["trip_distance"].between(0, MAX_TRIP_MILES, inclusive="left").all()  # what the API accepts
    zero = X["trip_distance"] == 0
    assert zero.any() and (X.loc[zero, "zero_distance"] == 1).all() and (X.loc[~zero, "zero_distance"] == 0).all()
    assert X["PU_DO"].iloc[0] == f"{X['PULocationID'].iloc[0]}_{X['DOLocationID'].iloc[0]}"
    assert not X.isna().any().any()


def test_build_features_names_missing_columns(march):
    with pytest.raises(ValueError, match="trip_distance"):
        build_features(march.drop(columns=["trip_distance"]))


def test_unknown_params_are_rejected():
    with pytest.raises(ValueError, match="unknown parameter"):
        build_model({"learning_rat": 0.1})
    with pytest.raises(ValueError, match=r"params\.model must be one of"):
        build_model({"model": "xgboost"})


def test_model_beats_the_course_baseline_and_reports_slices():
    X, y = prepare(_months("2024-01", 2, "stationary"))
    X_test, y_test = prepare(generate_month("2024-03", rows=8000))
    ours = evaluate(build_model().fit(X, y), X_test, y_test)
    linear = evaluate(build_model({"model": "linear_baseline"}).fit(X, y), X_test, y_test)
    log.warning("stationary: shared model RMSE %.2f vs course baseline %.2f", ours["rmse"], linear["rmse"])
    assert ours["rmse"] < 0.85 * linear["rmse"]
    assert {"Manhattan", "Brooklyn", "Queens", "Bronx"} <= set(ours["slices"]) <= set(BOROUGHS)
    assert sum(s["n"] for s in ours["slices"].values()) == ours["n"]
    assert "East Harlem" in " ".join(ours["zones"])  # the busiest green pickup zones, by name
    table = format_metrics(ours)
    assert "all served trips" in table and "distance = 0" in table and "Manhattan" in table


def test_served_population_is_what_the_api_accepts():
    assert MAX_MILES == MAX_TRIP_MILES
    trips = pd.DataFrame(
        {
            "lpep_pickup_datetime": pd.to_datetime(["2024-03-01 08:00"] * 5),
            "lpep_dropoff_datetime": pd.to_datetime(["2024-03-01 08:10"] * 4 + ["2024-03-01 09:10"]),
            "trip_distance": [0.0, 1.5, 199.99, 200.0, 1.5],
        }
    )
    assert list(served_trips(trips).index) == [0, 1, 2]  # 200 miles: refused by the API; 70 min: out of range
    assert list(clean_trips(trips).index) == [1, 2]


def test_headline_metric_covers_zero_distance_trips(march):
    X, y = prepare(march)
    model = build_model({"max_iter": 50}).fit(X, y)
    metrics = evaluate(model, X, y)
    zero = int((X["trip_distance"] == 0).sum())
    assert metrics["n"] == len(X) and metrics["zero_distance"]["n"] == zero > 0
    assert metrics["clean"]["n"] + zero == metrics["n"]
    clean = X["trip_distance"] > 0
    assert metrics["clean"]["rmse"] == pytest.approx(evaluate(model, X[clean], y[clean])["rmse"])
    assert "zero_distance" not in evaluate(model, X[clean], y[clean])


def test_slices_are_official_boroughs():
    X, y = prepare(generate_month("2024-03", rows=4000))
    model = build_model({"model": "linear_baseline"}).fit(X, y)
    picked = X["PULocationID"].isin(["74", "7", "206"])  # East Harlem North, Astoria, Saint George
    metrics = evaluate(model, X[picked], y[picked])
    assert {"Manhattan", "Queens"} <= set(metrics["slices"]) <= {"Manhattan", "Queens", "Staten Island"}
    assert metrics["slices"]["Manhattan"]["n"] == int((X.loc[picked, "PULocationID"] == "74").sum())


def test_format_metrics_reads_metrics_written_before_the_split():
    old = {"rmse": 5.0, "mae": 3.0, "n": 10, "slices": {"Queens": {"rmse": 5.0, "mae": 3.0, "n": 10}}}
    table = format_metrics(old)
    assert "Queens" in table and "distance > 0" not in table


def test_drift_hurts_and_retraining_recovers():
    """The drift scenario's promise: >= 15 % worse after the drift; retraining on post-drift data recovers (<= 5 %)."""
    before = build_model().fit(*prepare(_months("2024-01", 6)))
    pre = evaluate(before, *prepare(generate_month("2024-06", rows=8000, seed=1, scenario="drift")))["rmse"]
    post_month = generate_month("2024-09", rows=8000, seed=1, scenario="drift")
    post = evaluate(before, *prepare(post_month))["rmse"]
    after = build_model().fit(*prepare(_months("2024-07", 3)))
    recovered = evaluate(after, *prepare(post_month))["rmse"]
    log.warning(
        "drift: RMSE pre-drift %.3f, post-drift %.3f (%+.0f %%), after retraining %.3f (%+.1f %% vs pre-drift)",
        pre, post, 100 * (post / pre - 1), recovered, 100 * (recovered / pre - 1),
    )  # fmt: skip
    assert post >= 1.15 * pre
    assert recovered <= 1.05 * pre


def test_evaluate_refuses_empty():
    model = build_model({"model": "linear_baseline"})
    with pytest.raises(ValueError, match="empty"):
        evaluate(model, pd.DataFrame(), pd.Series(dtype=float))


def test_same_params_same_model(march):
    X, y = prepare(march)
    a = build_model().fit(X, y).predict(X.head(50))
    b = build_model().fit(X, y).predict(X.head(50))
    np.testing.assert_allclose(a, b)


def test_trip_pipeline_takes_raw_trips_and_matches_the_feature_model(march):
    trips, y = prepare_trips(march)
    assert list(trips.columns) == INPUT_COLUMNS
    X, y2 = prepare(march)
    pd.testing.assert_series_equal(y, y2)
    params = {"max_iter": 50}
    on_trips = build_trip_pipeline(params).fit(trips, y)
    on_features = build_model(params).fit(X, y)
    np.testing.assert_allclose(on_trips.predict(trips.head(100)), on_features.predict(X.head(100)))
    assert evaluate(on_trips, trips, y)["rmse"] == pytest.approx(evaluate(on_features, X, y)["rmse"])
