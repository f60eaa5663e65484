"""Level 4's monitoring of a large window, timed in-process: ``level4.monitor`` on a million logged predictions.

    run = measure_monitoring(1_000_000, say=print)     # report.MonitorRun: what was timed, in seconds

**The data.** The reference is what level 4's ``reference`` stage keeps: the training months' trips as the API
accepts them (``taxi.api_payloads.api_trips``), ``REFERENCE_ROWS`` of them (params.yaml ``reference.rows``),
here from the generated months 2024-01 and 2024-02. The window is ``rows`` logged predictions shaped as
``level4.monitor.load_window`` returns them, their inputs drawn (with replacement, seeded) from the generated
months 2024-03 to 2024-06 of the same stationary scenario. No feedback: the performance report needs true
durations and is not run; the predictions are not read by the drift and quality reports (a constant).

**What is timed** (the data is built first, and ``level4.monitor`` imported, outside the timings):

0. ``load_window``: reading the window back from a SQLite prediction store in a temporary folder, where it was
   written beforehand (untimed) as the service's writer writes it, as 1,000-trip requests;
1. ``monitor_window``: what the monitoring flow runs on a window (drift + quality reports, the result);
2. the drift report alone (``DataDriftPreset`` on the watched inputs, with the columns' preparation): the goal;
3. for comparison: the same drift report with the string columns (boroughs, weekday) as plain Python strings,
   as ``level4.monitor`` coded them before it made them pandas categoricals (the scores are compared with step
   2's: the same data, coded more expensively); and a cheap win measured but **not** made in ``level4.monitor``:
   the drift report on a seeded sample of ``SAMPLE_ROWS`` trips of the window (an estimate: its verdict is
   compared; the counts would still come from the whole window).
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from benchmark.report import MonitorRun, MonitorStep
from taxi.api_payloads import api_trips
from taxi.generator import generate_month

REFERENCE_ROWS = 20_000  # level 4's params.yaml reference.rows
SAMPLE_ROWS = 100_000
MONTH_ROWS = 60_000  # trips generated a month (the window repeats them)
SEED = 20240301


def reference_trips(rows: int = REFERENCE_ROWS, month_rows: int = MONTH_ROWS) -> pd.DataFrame:
    """The training months' API trips, at most ``rows`` of them (sampled as the reference stage samples)."""
    months = [generate_month(m, rows=month_rows // 2, seed=i) for i, m in enumerate(["2024-01", "2024-02"])]
    trips = api_trips(pd.concat(months, ignore_index=True)).reset_index(drop=True)
    if len(trips) > rows:
        trips = trips.sample(rows, random_state=0).sort_values("lpep_pickup_datetime").reset_index(drop=True)
    return trips


def logged_window(rows: int, month_rows: int = MONTH_ROWS) -> pd.DataFrame:
    """``rows`` logged predictions as ``load_window`` returns them (see module doc)."""
    names = ["2024-03", "2024-04", "2024-05", "2024-06"]
    months = [generate_month(m, rows=month_rows, seed=10 + i) for i, m in enumerate(names)]
    trips = api_trips(pd.concat(months, ignore_index=True)).reset_index(drop=True)
    picked = trips.iloc[np.random.default_rng(SEED).integers(0, len(trips), rows)].reset_index(drop=True)
    return pd.DataFrame(
        {
            "request_id": [f"r{i // 1000}" for i in range(rows)],  # as if sent in batches of 1000
            "row": np.arange(rows) % 1000,
            "logged_at": pd.Timestamp("2024-07-01"),
            "model_version": "1",
            "variant": "champion",
            "PULocationID": picked["PULocationID"],
            "DOLocationID": picked["DOLocationID"],
            "trip_distance": picked["trip_distance"],
            "pickup_datetime": picked["lpep_pickup_datetime"],
            "passenger_count": picked["passenger_count"].astype("float64"),
            "prediction": 15.0,
            "actual_duration_min": np.nan,
        }
    )


def measure_monitoring(rows: int, say: Callable[[str], None], month_rows: int = MONTH_ROWS) -> MonitorRun:
    """Time level 4's monitoring on a window of ``rows`` logged predictions (see module doc; ``month_rows``: trips
    generated a month, fewer for a smoke test)."""
    if importlib.util.find_spec("level4") is None:
        return MonitorRun(rows, 0, [], note="level 4 is not installed here")
    from level4 import monitor  # Evidently: seconds to import, not timed

    reference, window = reference_trips(month_rows=month_rows), logged_window(rows, month_rows)
    say(f"  window of {rows:,} logged predictions, reference of {len(reference):,} trips")
    config = monitor.MonitorConfig()
    steps: list[MonitorStep] = []
    folder = tempfile.mkdtemp(prefix="bench-monitor-")
    try:
        store = _logged_store(window, f"sqlite:///{folder}/predictions.db")
        began = time.perf_counter()
        read = monitor.load_window(store)
        steps.append(
            MonitorStep(
                "load_window (from a SQLite prediction store)",
                time.perf_counter() - began,
                rows,
                f"{len(read):,} rows read back" + ("" if len(read) == rows else ": NOT all"),
            )
        )
        say(f"  {steps[-1].what}: {steps[-1].seconds:.1f} s; {steps[-1].note}")
        store.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    def step(what: str, run: Callable[[], Any], size: int, note: Callable[[Any], str] = lambda _: "", **kw: Any) -> Any:
        began = time.perf_counter()
        value = run()
        steps.append(MonitorStep(what, time.perf_counter() - began, size, note(value), **kw))
        say(f"  {what}: {steps[-1].seconds:.1f} s{'; ' + steps[-1].note if steps[-1].note else ''}")
        return value

    step(
        "monitor_window (drift + quality reports)",
        lambda: monitor.monitor_window(window, reference, config, label="bench")[0],
        rows,
        lambda result: f"drift share {result.drift_share:.2f}, {len(result.quality_failures)} quality failures",
    )
    usual = monitor.usual_distances(reference)
    full = step("drift report", lambda: _drift(monitor, config, window, reference, usual), rows, _say, drift=True)
    step(
        "drift report, string columns as plain strings (level4.monitor before it used categoricals)",
        lambda: _drift(monitor, config, window, reference, usual, strings=True),
        rows,
        lambda scores: (
            "the same scores as the drift report" if scores == full else "scores DIFFER from the drift report"
        ),
    )
    sample = window.sample(min(SAMPLE_ROWS, rows), random_state=SEED)
    step(
        f"drift report on a seeded sample of {len(sample):,} trips (not in level4.monitor)",
        lambda: _drift(monitor, config, sample, reference, usual),
        len(sample),
        lambda scores: f"{_say(scores)} (the whole window: {full['share']:.2f})",
    )
    return MonitorRun(rows, len(reference), steps)


def _logged_store(window: pd.DataFrame, url: str) -> Any:
    """A prediction store holding ``window`` as the service logs it (requests packed by the batch)."""
    from level4.prediction_log import LoggedRequest, PredictionStore
    from taxi.trip_columns import TripColumns

    store = PredictionStore(url)
    requests = []
    for request_id, group in window.groupby("request_id", sort=False):
        columns = TripColumns(
            group["PULocationID"].to_numpy(np.int64),
            group["DOLocationID"].to_numpy(np.int64),
            group["trip_distance"].to_numpy(np.float64),
            group["pickup_datetime"].to_numpy("datetime64[us]"),
            group["passenger_count"].to_numpy(np.float64),
        )
        requests.append(LoggedRequest(str(request_id), 0.0, "1", "champion", columns, group["prediction"].to_numpy()))
    for start in range(0, len(requests), 400):  # ~0.25 s of single trips at the service's pace: one write
        store.insert_requests(requests[start : start + 400])
    return store


def _drift(
    monitor: Any,
    config: Any,
    window: pd.DataFrame,
    reference: pd.DataFrame,
    usual: pd.Series,
    strings: bool = False,
) -> dict[str, Any]:
    """The drift report as ``monitor_window`` runs it; its drift share and per-column scores."""
    current, baseline = monitor.monitored(window, usual), monitor.monitored(reference, usual)
    if strings:
        for frame in (current, baseline):
            frame[monitor.CATEGORICAL] = frame[monitor.CATEGORICAL].astype(object)
    snapshot = monitor.drift_report(config).run(
        current_data=monitor._dataset(current), reference_data=monitor._dataset(baseline)
    )
    scores: dict[str, Any] = {}
    for metric in snapshot.dict()["metrics"]:
        kind = metric["config"]["type"].rsplit(":", 1)[-1]
        if kind == "DriftedColumnsCount":
            scores["share"] = float(metric["value"]["share"])
        elif kind == "ValueDrift":
            scores[str(metric["config"].get("column"))] = metric["value"]
    return scores


def _say(scores: dict[str, Any]) -> str:
    return f"drift share {scores['share']:.2f}"
