"""The trip-duration model: features, training pipeline, evaluation. Pure scikit-learn, no MLOps tool.

X, y = prepare(raw_month)                 # the served 1-60 min trips, target in minutes, features
model = build_model(params).fit(X, y)     # a scikit-learn Pipeline
evaluate(model, X_test, y_test)           # RMSE, MAE (served trips, and the clean subset), per-borough slices

**Which trips.** The API accepts any trip with 0 <= trip_distance < 200 miles, so the model is trained
and scored on that population: every trip lasting 1-60 minutes with a distance in that range
(``served_trips``). Zero-distance trips are a few percent of real months (the meter recorded no
distance for a real trip); they stay in, so the model learns that 0 means "distance unknown", not
"no distance", and falls back on the zones and the time. ``zero_distance`` marks them as a feature (a
tree finds the split by itself; the linear models need the flag). ``clean_trips`` is the classic subset
(positive distance) that the well-known course trained on; ``evaluate`` reports it beside the headline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from taxi.schema import DROPOFF, INPUT_COLUMNS, PICKUP
from taxi.zones import BOROUGHS, borough_of, zone_name_of

if TYPE_CHECKING:  # scikit-learn is imported where a model is built: reading trips needs only pandas
    from sklearn.pipeline import Pipeline

MIN_MINUTES, MAX_MINUTES = 1.0, 60.0
MAX_MILES = 200.0  # the API's limit (taxi.trip.MAX_TRIP_MILES): trips at or over it are never served
TOP_ZONES = 5  # evaluate() also reports the busiest pickup zones, by name
TARGET = "duration_min"

# What the model reads from a trip (the inputs of every API): INPUT_COLUMNS, imported from taxi.schema above.
FEATURES = [
    "PULocationID",
    "DOLocationID",
    "PU_DO",
    "borough_pair",
    "trip_distance",
    "zero_distance",
    "pickup_hour",
    "pickup_weekday",
    "passenger_count",
]
_ZONE_FEATURES = ["PULocationID", "DOLocationID", "PU_DO"]
_NUMERIC_FEATURES = ["trip_distance", "zero_distance", "pickup_hour", "pickup_weekday", "passenger_count"]

DEFAULT_PARAMS: dict[str, Any] = {
    "model": "hist_gradient_boosting",
    "learning_rate": 0.1,
    "max_iter": 300,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 20,
    "l2_regularization": 0.0,
    "random_state": 42,
}
MODEL_KINDS = ("hist_gradient_boosting", "linear_baseline", "ridge")


def duration_minutes(df: pd.DataFrame) -> pd.Series:
    """Dropoff minus pickup, in minutes."""
    return (df[DROPOFF] - df[PICKUP]).dt.total_seconds() / 60


def build_features(df: pd.DataFrame) -> pd.DataFrame:
    """Model features from raw trips (TLC columns, or API trips with ``INPUT_COLUMNS``)."""
    missing = [c for c in INPUT_COLUMNS if c not in df.columns and c != "passenger_count"]
    if missing:
        raise ValueError(f"missing column(s) needed for the features: {', '.join(missing)}")
    pu = df["PULocationID"].astype("int64")
    do = df["DOLocationID"].astype("int64")
    pickup = pd.to_datetime(df[PICKUP])
    passengers = df["passenger_count"] if "passenger_count" in df.columns else pd.Series(np.nan, index=df.index)
    distance = df["trip_distance"].astype("float64")
    return pd.DataFrame(
        {
            "PULocationID": pu.astype(str),
            "DOLocationID": do.astype(str),
            "PU_DO": pu.astype(str) + "_" + do.astype(str),
            "borough_pair": pd.Series(borough_of(pu), index=df.index) + "_" + pd.Series(borough_of(do), index=df.index),
            "trip_distance": distance,
            "zero_distance": (distance == 0).astype("int64"),
            "pickup_hour": pickup.dt.hour.astype("int64"),
            "pickup_weekday": pickup.dt.dayofweek.astype("int64"),
            "passenger_count": passengers.astype("float64").fillna(1.0),
        },
        index=df.index,
    )[FEATURES]


def served_trips(df: pd.DataFrame) -> pd.DataFrame:
    """The trips the model learns from and is scored on: 1-60 minutes, a distance the API accepts (0 to <200)."""
    minutes = duration_minutes(df)
    keep = minutes.between(MIN_MINUTES, MAX_MINUTES) & df["trip_distance"].between(0, MAX_MILES, inclusive="left")
    return df.loc[keep]


def clean_trips(df: pd.DataFrame) -> pd.DataFrame:
    """The classic clean subset of ``served_trips``: 1-60 minutes and a positive distance under 200 miles."""
    trips = served_trips(df)
    return trips.loc[trips["trip_distance"] > 0]


def prepare(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Raw trips -> (features X, target y = duration in minutes) for the ``served_trips``; dirty trips dropped."""
    trips = served_trips(df)
    y = duration_minutes(trips).rename(TARGET)
    return build_features(trips), y


def prepare_trips(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Raw trips -> (the ``served_trips``' input columns, y): what a model that takes raw trips learns from."""
    trips = served_trips(df)
    inputs = trips[[c for c in INPUT_COLUMNS if c in trips.columns]].copy()
    if "passenger_count" not in inputs.columns:
        inputs["passenger_count"] = np.nan
    return inputs[INPUT_COLUMNS], duration_minutes(trips).rename(TARGET)


def build_trip_pipeline(params: Mapping[str, Any] | None = None) -> Pipeline:
    """``build_model`` preceded by ``build_features``: a Pipeline that takes raw trips (INPUT_COLUMNS).

    This is what the levels with a model registry log, so the served model's signature is the trip
    a client sends, not the engineered features.
    """
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    return Pipeline([("trip_features", FunctionTransformer(build_features)), ("model", build_model(params))])


def build_model(params: Mapping[str, Any] | None = None) -> Pipeline:
    """A scikit-learn Pipeline for ``params`` (see DEFAULT_PARAMS; unknown keys are an error).

    - ``hist_gradient_boosting`` (default): target-encoded zones and zone pair, native categorical
      borough pair, distance, hour, weekday, passengers -> HistGradientBoostingRegressor.
    - ``linear_baseline``: the well-known course baseline, one-hot PU_DO + distance -> LinearRegression.
    - ``ridge``: one-hot zones, pair and borough pair + numeric features -> Ridge(alpha).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import LinearRegression, Ridge
    from sklearn.model_selection import KFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, TargetEncoder

    p = {**DEFAULT_PARAMS, **(params or {})}
    kind = p.pop("model")
    if kind == "hist_gradient_boosting":
        allowed = set(DEFAULT_PARAMS) - {"model"}
        _check_keys(p, allowed, kind)
        folds = KFold(5, shuffle=True, random_state=p["random_state"])  # cross-fitted target encoding
        encode = ColumnTransformer(
            [
                ("zones", TargetEncoder(target_type="continuous", cv=folds), _ZONE_FEATURES),
                ("boroughs", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["borough_pair"]),
                ("numeric", "passthrough", _NUMERIC_FEATURES),
            ],
            verbose_feature_names_out=False,
        )
        regressor = HistGradientBoostingRegressor(
            learning_rate=p["learning_rate"],
            max_iter=p["max_iter"],
            max_leaf_nodes=p["max_leaf_nodes"],
            min_samples_leaf=p["min_samples_leaf"],
            l2_regularization=p["l2_regularization"],
            categorical_features=[3],  # borough_pair, after the three zone encodings
            random_state=p["random_state"],
        )
        return Pipeline([("features", encode), ("regressor", regressor)])
    if kind == "linear_baseline":
        _check_keys(p, set(DEFAULT_PARAMS) - {"model"}, kind)
        encode = ColumnTransformer(
            [
                ("pair", OneHotEncoder(handle_unknown="ignore"), ["PU_DO"]),
                ("distance", "passthrough", ["trip_distance"]),
            ]
        )
        return Pipeline([("features", encode), ("regressor", LinearRegression())])
    if kind == "ridge":
        alpha = p.pop("alpha", 1.0)
        _check_keys(p, set(DEFAULT_PARAMS) - {"model"}, kind)
        encode = ColumnTransformer(
            [
                ("categories", OneHotEncoder(handle_unknown="ignore"), [*_ZONE_FEATURES, "borough_pair"]),
                ("numeric", "passthrough", _NUMERIC_FEATURES),
            ]
        )
        return Pipeline([("features", encode), ("regressor", Ridge(alpha=alpha))])
    raise ValueError(f"params.model must be one of {', '.join(MODEL_KINDS)}; got {kind!r}")


def _check_keys(params: Mapping[str, Any], allowed: set[str], kind: str) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(f"unknown parameter(s) for {kind}: {', '.join(unknown)}")


def _errors(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    err = np.asarray(y_pred, dtype="float64") - np.asarray(y_true, dtype="float64")
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err))), "n": len(err)}


def evaluate(model: Any, X: pd.DataFrame, y: pd.Series) -> dict[str, Any]:
    """RMSE and MAE in minutes on every trip given (the headline: ``rmse``, ``mae``, ``n``), then sub-groups.

    - ``clean``: the trips with a positive distance (the classic figure); ``zero_distance``: the others
      (each only when it has trips);
    - ``slices``: per pickup borough (official names, slices with at least one trip);
    - ``zones``: the ``TOP_ZONES`` busiest pickup zones, keyed "<id> <official zone name>".

    ``X`` is what ``model`` takes: features (``prepare``) or raw trips (``prepare_trips``); with either,
    the headline covers the served population (see module doc).
    """
    if len(X) == 0:
        raise ValueError("cannot evaluate on an empty set of trips")
    actual = y.to_numpy()
    pred = np.asarray(model.predict(X), dtype="float64")
    metrics: dict[str, Any] = _errors(actual, pred)
    zero = X["trip_distance"].to_numpy() == 0
    for name, rows in (("clean", ~zero), ("zero_distance", zero)):
        if rows.any():
            metrics[name] = _errors(actual[rows], pred[rows])
    pu = X["PULocationID"].astype("int64").to_numpy()
    borough = borough_of(pu)
    metrics["slices"] = {
        name: _errors(actual[borough == name], pred[borough == name]) for name in BOROUGHS if (borough == name).any()
    }
    busiest = pd.Series(pu).value_counts(sort=True).index[:TOP_ZONES]
    names = zone_name_of(busiest.to_numpy())
    metrics["zones"] = {
        f"{z} {name}": _errors(actual[pu == z], pred[pu == z]) for z, name in zip(busiest, names, strict=True)
    }
    return metrics


def format_metrics(metrics: Mapping[str, Any]) -> str:
    """A small aligned table: all trips (headline), the clean / zero-distance split, per borough, busiest zones.

    Metrics written before the split existed (no ``clean``) print without those rows.
    """
    width = 36
    lines = [f"{'trips scored':<{width}}{'trips':>8}{'RMSE':>8}{'MAE':>8}"]

    def row(label: str, m: Mapping[str, Any]) -> None:
        lines.append(f"{label[: width - 1]:<{width}}{m['n']:>8}{m['rmse']:>8.2f}{m['mae']:>8.2f}")

    row("all served trips (distance 0-200)", metrics)
    if "clean" in metrics:
        row("  distance > 0 (the classic subset)", metrics["clean"])
    if "zero_distance" in metrics:
        row("  distance = 0", metrics["zero_distance"])
    if metrics.get("slices"):
        lines.append("by pickup borough:")
        for name, m in metrics["slices"].items():
            row(f"  {name}", m)
    if metrics.get("zones"):
        lines.append("busiest pickup zones:")
        for name, m in metrics["zones"].items():
            row(f"  {name}", m)
    return "\n".join(lines)
