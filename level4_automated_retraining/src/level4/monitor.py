"""Monitoring one window of logged predictions with Evidently 0.7: three reports and a small typed result.

    window = load_window(store, start, end)                      # predictions (+ feedback) picked up in [start, end)
    result, snapshots = monitor_window(window, reference, MonitorConfig(), label="2024-08")
    result.drift_share, result.drifted_columns, result.quality_failures, result.rmse   # what a policy reads

**The columns watched** (``monitored``): the model's inputs as a window of a few thousand trips can judge them:
``trip_distance``, ``pickup_hour``, ``pickup_weekday``, ``passenger_count``, and the zones as ``pickup_borough`` /
``dropoff_borough`` (265 zone ids in a window of a few thousand trips differ from any reference by chance:
Jensen-Shannon distance ~0.12 on a stationary month, above Evidently's 0.1), plus ``distance_vs_usual``: each
trip's distance over the reference's median distance for the same pickup -> dropoff zone pair (the unit signal:
~1 whatever the traffic mix; ~1.6 for a feed that reports kilometres).

**The reports** (``Report(...).run(current_data=..., reference_data=...)``: current first):

- ``drift``: ``DataDriftPreset`` on the inputs against the champion's training reference, with its tests
  (Evidently's default method per column: Wasserstein distance for numbers, Jensen-Shannon for categories,
  threshold 0.1; the dataset drifts when ``drift_share`` of the columns do).
- ``quality``: ``DataSummaryPreset`` (the summary, beside the reference) and explicit tests, the checks ``rows``
  (enough trips to judge), ``passenger_count_missing`` (null share), ``distance_range`` (distances in a plausible
  range) and ``distance_unit`` (median ``distance_vs_usual`` within a band: a changed unit upstream). Only these
  tests: with a reference, the preset's automatic "+-10 % of the reference" tests fail on ordinary variation.
- ``performance``: ``RegressionPreset`` on the trips with feedback (true duration vs prediction) that lasted
  1-60 minutes, the population the model is trained and evaluated on (``taxi.model.served_trips``: the rare
  multi-hour "trips" of real files would dominate an RMSE), when there are at least ``min_feedback_rows``.

Each snapshot is saved as HTML + JSON by ``save_reports``; ``MonitoringResult`` is read from the snapshots' metric
and test results (``Snapshot.dict()``), never from the HTML.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Regression, Report
from evidently.core.report import Snapshot
from evidently.metrics import InRangeValueCount, MedianValue, MissingValueCount, RowCount
from evidently.presets import DataDriftPreset, DataSummaryPreset, RegressionPreset
from evidently.tests import gte, lte
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from level4.prediction_log import FEEDBACK, PredictionStore, logged_request_ids, read_predictions
from taxi.model import MAX_MINUTES, MIN_MINUTES
from taxi.zones import borough_of

NUMERICAL = ["trip_distance", "pickup_hour", "passenger_count", "distance_vs_usual"]
CATEGORICAL = ["pickup_borough", "dropoff_borough", "pickup_weekday"]
DRIFT_COLUMNS = ["trip_distance", "pickup_hour", "pickup_weekday", "passenger_count", *CATEGORICAL[:2]]
QUALITY_CHECKS = {  # (metric type, column) -> the quality check's name
    ("RowCount", None): "rows",
    ("MissingValueCount", "passenger_count"): "passenger_count_missing",
    ("InRangeValueCount", "trip_distance"): "distance_range",
    ("MedianValue", "distance_vs_usual"): "distance_unit",
}
MIN_PAIR_TRIPS = 3  # a zone pair needs this many reference trips for its usual distance


class MonitorConfig(BaseModel):
    """Thresholds of the monitoring reports (params.yaml ``monitoring``). Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")

    drift_share: float = Field(0.5, gt=0, le=1, description="the dataset drifts when this share of columns drift")
    min_rows: int = Field(200, ge=1, description="fewer predictions in a window: the quality test 'rows' fails")
    max_missing_passengers: float = Field(0.5, ge=0, le=1, description="largest share of trips without passengers")
    plausible_max_miles: float = Field(100.0, gt=0, description="distances above this are implausible")
    min_plausible_share: float = Field(0.995, ge=0, le=1, description="share of trips with a plausible distance")
    usual_distance_band: tuple[float, float] = Field(
        (0.85, 1.15), description="median distance / usual distance of the zone pair must stay in this band"
    )
    min_feedback_rows: int = Field(50, ge=1, description="trips with feedback needed for the performance report")


class QualityFailure(BaseModel):
    check: str
    description: str


class MonitoringResult(BaseModel):
    """What one window's monitoring found: what part 2's retraining policy reads (never the HTML)."""

    window: str
    start: datetime | None
    end: datetime | None
    champion_version: str | None = None
    rows: int
    rows_with_feedback: int = Field(description="predictions with a true duration of 1-60 min (the scored ones)")
    model_versions: dict[str, int] = Field(default_factory=dict, description="predictions per model version")
    drift_share: float = Field(description="share of the watched columns whose distribution drifted")
    drifted_columns: list[str]
    dataset_drift: bool = Field(description="drift_share reached the configured share")
    quality_failures: list[QualityFailure]
    rmse: float | None = Field(None, description="RMSE (minutes) on the trips with feedback, when there are enough")
    mae: float | None = None
    reports: dict[str, str] = Field(default_factory=dict, description="report name -> HTML path")

    @property
    def quality_ok(self) -> bool:
        return not self.quality_failures

    def summary(self) -> str:
        """A few lines for a terminal or a log."""
        drift = ", ".join(self.drifted_columns) or "none"
        quality = "; ".join(f"{f.check}: {f.description}" for f in self.quality_failures) or "all tests pass"
        perf = (
            f"RMSE {self.rmse:.2f} min, MAE {self.mae:.2f} min on {self.rows_with_feedback} trips with feedback"
            if self.rmse is not None
            else f"not enough feedback ({self.rows_with_feedback} trips)"
        )
        versions = ", ".join(f"v{v}: {n}" for v, n in sorted(self.model_versions.items())) or "-"
        return "\n".join(
            [
                f"window {self.window}: {self.rows} predictions ({versions}), champion v{self.champion_version}",
                f"  drift:       share {self.drift_share:.2f} {'DRIFT' if self.dataset_drift else 'no dataset drift'}"
                f"; drifted columns: {drift}",
                f"  quality:     {'FAILED: ' if self.quality_failures else ''}{quality}",
                f"  performance: {perf}",
            ]
        )


# ---- the data ----


def load_window(store: PredictionStore, start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
    """Logged predictions whose pickup is in [start, end), one row per trip (``level4.prediction_log``), with
    ``actual_duration_min`` where feedback came (NaN elsewhere)."""
    store.ensure_schema()
    f = FEEDBACK
    feedback = (
        select(f.c.request_id, f.c.row, f.c.actual_duration_min)
        .where(f.c.request_id.in_(logged_request_ids(start, end)))
    )  # fmt: skip
    with store.engine.connect() as connection:
        frame = read_predictions(connection, start, end)
        truth = pd.DataFrame(connection.execute(feedback).all(), columns=["request_id", "row", "actual_duration_min"])
    truth = truth.astype({"request_id": object, "row": "int64", "actual_duration_min": "float64"})
    frame = frame.merge(truth, on=["request_id", "row"], how="left", validate="many_to_one")
    return frame.astype({"passenger_count": "float64", "actual_duration_min": "float64"})


def usual_distances(reference: pd.DataFrame) -> pd.Series:
    """Median distance of each (pickup zone, dropoff zone) pair of the reference with enough trips."""
    moving = reference[reference["trip_distance"] > 0]
    grouped = moving.groupby(["PULocationID", "DOLocationID"])["trip_distance"]
    stats = grouped.agg(["median", "size"])
    return stats.loc[stats["size"] >= MIN_PAIR_TRIPS, "median"]


def monitored(trips: pd.DataFrame, usual: pd.Series) -> pd.DataFrame:
    """The watched columns of trips (``PULocationID``, ``DOLocationID``, ``trip_distance``, a pickup time column
    ``pickup_datetime`` or ``lpep_pickup_datetime``, ``passenger_count``), see module doc. The string columns are
    pandas categoricals: the same values and scores, and Evidently counts them twice as fast on a large window."""
    pickup = pd.to_datetime(trips["pickup_datetime" if "pickup_datetime" in trips else "lpep_pickup_datetime"])
    pairs = pd.MultiIndex.from_arrays([trips["PULocationID"].astype("int64"), trips["DOLocationID"].astype("int64")])
    usual_here = usual.reindex(pairs).to_numpy()
    distance = trips["trip_distance"].astype("float64").to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(distance > 0, distance / usual_here, np.nan)
    return pd.DataFrame(
        {
            "trip_distance": distance,
            "pickup_hour": pickup.dt.hour.to_numpy(),
            "pickup_weekday": pickup.dt.day_name().to_numpy(),
            "passenger_count": trips["passenger_count"].astype("float64").to_numpy(),
            "pickup_borough": borough_of(trips["PULocationID"]),
            "dropoff_borough": borough_of(trips["DOLocationID"]),
            "distance_vs_usual": ratio,
        }
    ).astype(dict.fromkeys(CATEGORICAL, "category"))


def _dataset(frame: pd.DataFrame) -> Dataset:
    definition = DataDefinition(numerical_columns=NUMERICAL, categorical_columns=CATEGORICAL)
    return Dataset.from_pandas(frame, data_definition=definition)


# ---- the reports ----


def drift_report(config: MonitorConfig) -> Report:
    return Report([DataDriftPreset(columns=DRIFT_COLUMNS, drift_share=config.drift_share)], include_tests=True)


def quality_report(config: MonitorConfig) -> Report:
    low, high = config.usual_distance_band
    return Report(
        [
            DataSummaryPreset(columns=[*NUMERICAL, *CATEGORICAL]),  # the summary; its automatic tests are off
            RowCount(tests=[gte(config.min_rows)]),
            MissingValueCount(column="passenger_count", share_tests=[lte(config.max_missing_passengers)]),
            InRangeValueCount(
                column="trip_distance",
                left=0,
                right=config.plausible_max_miles,
                share_tests=[gte(config.min_plausible_share)],
            ),
            MedianValue(column="distance_vs_usual", tests=[gte(low), lte(high)]),
        ],
        include_tests=False,  # only the explicit tests above
    )


def performance_report() -> Report:
    return Report([RegressionPreset()], include_tests=False)


def monitor_window(
    window: pd.DataFrame,
    reference: pd.DataFrame,
    config: MonitorConfig,
    *,
    label: str,
    start: datetime | None = None,
    end: datetime | None = None,
    champion_version: str | None = None,
    timestamp: datetime | None = None,
) -> tuple[MonitoringResult, dict[str, Snapshot]]:
    """Run the reports on ``window`` (``load_window``) against ``reference`` (the champion's training trips);
    returns the typed result and the snapshots by report name. An empty window raises ValueError."""
    if window.empty:
        raise ValueError(f"window {label}: no logged predictions to monitor")
    usual = usual_distances(reference)
    current, baseline = _dataset(monitored(window, usual)), _dataset(monitored(reference, usual))

    def run(report: str) -> dict[str, Any]:  # how the workspace finds a window's reports
        return {"timestamp": timestamp, "tags": [label, report], "metadata": {"window": label, "report": report}}

    snapshots = {
        "drift": drift_report(config).run(current_data=current, reference_data=baseline, **run("drift")),
        "quality": quality_report(config).run(current_data=current, reference_data=baseline, **run("quality")),
    }
    judged = window[window["actual_duration_min"].between(MIN_MINUTES, MAX_MINUTES)]  # the population the model serves
    if len(judged) >= config.min_feedback_rows:
        frame = pd.DataFrame({"target": judged["actual_duration_min"], "prediction": judged["prediction"]})
        definition = DataDefinition(regression=[Regression(target="target", prediction="prediction")])
        snapshots["performance"] = performance_report().run(
            current_data=Dataset.from_pandas(frame, data_definition=definition),
            reference_data=None,
            **run("performance"),
        )
    drift, quality = snapshots["drift"].dict(), snapshots["quality"].dict()
    performance = snapshots["performance"].dict() if "performance" in snapshots else None
    share = next(m["value"]["share"] for m in drift["metrics"] if m["config"]["type"].endswith(":DriftedColumnsCount"))
    result = MonitoringResult(
        window=label,
        start=start,
        end=end,
        champion_version=champion_version,
        rows=len(window),
        rows_with_feedback=len(judged),
        model_versions={str(k): int(v) for k, v in window["model_version"].value_counts().items()},
        drift_share=float(share),
        drifted_columns=[
            t["metric_config"]["params"]["column"]
            for t in drift["tests"]
            if t["metric_config"]["params"]["type"].endswith(":ValueDrift") and t["status"] != "SUCCESS"
        ],
        dataset_drift=float(share) >= config.drift_share,
        quality_failures=[
            QualityFailure(check=_check_name(t), description=t["description"])
            for t in quality["tests"]
            if t["status"] != "SUCCESS"
        ],
        rmse=_value(performance, ":RMSE"),
        mae=_value(performance, ":MAE"),
    )
    return result, snapshots


def _check_name(test: Mapping[str, Any]) -> str:
    """The quality check a test belongs to (see module doc), from its metric's type and column."""
    params = test["metric_config"]["params"]
    key = (params["type"].rsplit(":", 1)[-1], params.get("column"))
    return QUALITY_CHECKS.get(key, test["name"])


def _value(report: Mapping[str, Any] | None, metric_type: str) -> float | None:
    """The first value of a metric of that type in a snapshot's dict (a mean/std metric: its mean)."""
    if report is None:
        return None
    for metric in report["metrics"]:
        if metric["config"]["type"].endswith(metric_type):
            value = metric["value"]
            return float(value["mean"] if isinstance(value, dict) else value)
    return None


def save_reports(result: MonitoringResult, snapshots: Mapping[str, Snapshot], folder: Path) -> Path:
    """``folder``/<window>/<report>.html + .json for each snapshot, and result.json; returns the window's folder."""
    out = folder / _safe(result.window)
    out.mkdir(parents=True, exist_ok=True)
    for name, snapshot in snapshots.items():
        snapshot.save_html(str(out / f"{name}.html"))
        snapshot.save_json(str(out / f"{name}.json"))
        result.reports[name] = str(out / f"{name}.html")
    (out / "result.json").write_text(result.model_dump_json(indent=2))
    return out


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
