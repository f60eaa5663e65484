"""Each path measured the same way: answers checked against the registered pipeline, then timed.

- ``measure_server``: a service over HTTP (started, checked, loaded at c=1 and c=8 with single trips and at
  c=1 with 1000-trip batches; a service that logs predictions: its log's figures once its writer caught up;
  stopped);
- ``measure_pipeline`` / ``measure_fast_path``: the same model in-process (one row, 1000 rows);
- ``measure_validation``: pydantic validation of a 1000-trip list (from Python objects, from JSON bytes).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark import inprocess, servers
from benchmark.load import run_load
from benchmark.model import BenchModel
from benchmark.report import FAST_PATH, PIPELINE, VALIDATION, PathResult, one_line
from benchmark.stats import Summary
from taxi.inference import predict_frame

BATCH = 1000
SINGLE_TRIPS = 200  # distinct trips the single-row runs cycle through
CHECKED_SINGLES = 50  # trips also checked one request (or one call) each


@dataclass(frozen=True)
class Budget:
    """Bounds of each measurement: calls and seconds, whichever comes first, after a warm-up."""

    seconds: float = 5.0  # over HTTP
    c1_calls: int = 2000
    c8_calls: int = 4000
    batch_calls: int = 100
    warmup: int = 50
    min_calls: int = 30  # single rows: a slow path still gets this many samples (batches: min_calls // 6)
    in_process_seconds: float = 3.0
    in_process_calls: int = 2000


QUICK = Budget(
    seconds=1.5, c1_calls=300, c8_calls=600, batch_calls=10, warmup=10, in_process_seconds=1.0, in_process_calls=200
)


def measure_server(
    server: servers.Server, role: str, model: BenchModel, workdir: Path, budget: Budget, say: Callable[[str], None]
) -> PathResult:
    """Start ``server``, check its answers, load it (c=1, c=8, 1000-trip batches), stop it."""
    say(f"  {server.name}: starting ...")
    started = time.monotonic()
    result = PathResult(server.name, role, serving_path=server.serving_path, prediction_log=server.prediction_log)
    payloads, path = model.payloads, server.predict_path
    singles = [server.encode([p]) for p in payloads[:SINGLE_TRIPS]]
    batch = [server.encode(payloads[:BATCH])]
    try:
        with servers.running(server, workdir) as url:
            say(f"  {server.name}: answering on {url} after {time.monotonic() - started:.1f} s")
            if server.info_path:
                _, info = servers.http_json(url + server.info_path)
                reported = info.get("serving_path") if isinstance(info, dict) else None
                result.serving_path = str(reported) if reported else "not reported by GET /model"
            result.max_diff = check_answers(server, url, model)
            for concurrency, calls in ((1, budget.c1_calls), (8, budget.c8_calls)):
                run_load(url, path, singles, concurrency=concurrency, max_calls=budget.warmup, max_seconds=30)
                summary = run_load(
                    url, path, singles, concurrency=concurrency, max_calls=calls, max_seconds=budget.seconds,
                    min_calls=budget.min_calls,
                ).summary()  # fmt: skip
                setattr(result, f"c{concurrency}", summary)
            run_load(url, path, batch, max_calls=3, max_seconds=30, rows_per_call=BATCH)
            result.batch = run_load(
                url, path, batch, max_calls=budget.batch_calls, max_seconds=budget.seconds,
                min_calls=budget.min_calls // 6, rows_per_call=BATCH,
            ).summary()  # fmt: skip
            if server.prediction_log:
                result.logged = servers.prediction_log_figures(url)
    except (servers.ServerError, OSError) as exc:
        result.note = f"failed: {str(exc).splitlines()[0]}"
        say(f"  {server.name}: FAILED: {exc}")
        return result
    say(f"  {one_line(result)}")
    return result


def check_answers(server: servers.Server, url: str, model: BenchModel) -> float:
    """The largest difference from the registered pipeline: 1000 trips in one request (in every body format
    the server takes), and the first ``CHECKED_SINGLES`` trips one request each. inf if any answer is missing."""
    reference = model.reference(BATCH)
    worst = 0.0
    for encode in server.encoders.values():
        status, body = servers.http_json(url + server.predict_path, encode(model.payloads[:BATCH]))
        worst = max(worst, inprocess.max_abs_difference(_predictions(status, body, BATCH), reference))
    singles: list[float] = []
    for payload in model.payloads[:CHECKED_SINGLES]:
        status, body = servers.http_json(url + server.predict_path, server.encode([payload]))
        singles += _predictions(status, body, 1)
    return max(worst, inprocess.max_abs_difference(singles, reference[:CHECKED_SINGLES]))


def _predictions(status: int, body: object, expected: int) -> list[float]:
    answers = body.get("predictions") if status == 200 and isinstance(body, dict) else None
    return list(answers) if isinstance(answers, list) else [float("nan")] * expected


def _timed(fn: Callable[[], object], budget: Budget, calls: int, rows: int = 1) -> Summary:
    """``fn`` timed in-process within the budget (1000-row calls: fewer samples at least)."""
    floor = budget.min_calls if rows == 1 else budget.min_calls // 6
    return inprocess.time_calls(
        fn, max_calls=calls, max_seconds=budget.in_process_seconds, min_calls=floor, rows_per_call=rows
    )


def measure_pipeline(model: BenchModel, budget: Budget, say: Callable[[str], None]) -> PathResult:
    """The registered pipeline in this process, called as the services call it (``taxi.inference.predict_frame``:
    one OpenMP thread for small frames)."""
    pipeline, one, thousand = model.pipeline, model.frame(1), model.frame(BATCH)
    result = PathResult(
        "in-process pipeline",
        PIPELINE,
        serving_path="scikit-learn Pipeline via predict_frame",
        c1=_timed(lambda: predict_frame(pipeline, one), budget, budget.in_process_calls),
        batch=_timed(lambda: predict_frame(pipeline, thousand), budget, budget.batch_calls, BATCH),
        max_diff=inprocess.max_abs_difference(predict_frame(pipeline, thousand), model.reference(BATCH)),
    )
    say(f"  {one_line(result)}")
    return result


def measure_fast_path(model: BenchModel, budget: Budget, say: Callable[[str], None]) -> PathResult:
    """``taxi.fast_path`` compiled from the registered pipeline: ``predict_trips`` on one trip, ``predict`` on
    1000 rows. A row that says "not available" while the module does not exist or cannot compile the model."""
    name = "in-process fast path"
    compile_trip_pipeline, error = inprocess.load_fast_path()
    if compile_trip_pipeline is None:
        say(f"  {name}: {error}")
        return PathResult(name, FAST_PATH, note=error)
    try:
        fast = compile_trip_pipeline(model.pipeline)
    except error as exc:
        say(f"  {name}: cannot compile the registered pipeline: {exc}")
        return PathResult(name, FAST_PATH, note=f"not available: {exc}")
    trips = inprocess.TRIPS.validate_python(model.payloads[:BATCH])
    thousand, reference = model.frame(BATCH), model.reference(BATCH)
    singles = np.concatenate([fast.predict_trips([trip]) for trip in trips[:CHECKED_SINGLES]])
    one = trips[:1]
    result = PathResult(
        name,
        FAST_PATH,
        serving_path="taxi.fast_path",
        c1=_timed(lambda: fast.predict_trips(one), budget, budget.in_process_calls * 10),
        batch=_timed(lambda: fast.predict(thousand), budget, budget.batch_calls, BATCH),
        max_diff=max(
            inprocess.max_abs_difference(fast.predict(thousand), reference),
            inprocess.max_abs_difference(singles, reference[:CHECKED_SINGLES]),
        ),
    )
    say(f"  {one_line(result)}")
    return result


def measure_validation(model: BenchModel, budget: Budget, say: Callable[[str], None]) -> list[PathResult]:
    """``TypeAdapter(list[Trip])`` on the same 1000 trips: ``validate_python`` (dicts) and ``validate_json``."""
    as_python, as_json = inprocess.validation_bodies(model.payloads[:BATCH])
    results = []
    for name, call in (
        ("validate_python", lambda: inprocess.TRIPS.validate_python(as_python)),
        ("validate_json", lambda: inprocess.TRIPS.validate_json(as_json)),
    ):
        summary = _timed(call, budget, budget.batch_calls, len(as_python))
        results.append(PathResult(f"pydantic {name}", VALIDATION, "TypeAdapter(list[Trip])", batch=summary))
        say(f"  {one_line(results[-1])}")
    return results
