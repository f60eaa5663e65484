"""Timings without HTTP: the registered pipeline, the fast path, pydantic validation of a batch of trips.

``time_calls(fn, ...)`` calls ``fn()`` after a warm-up, up to ``max_calls`` times or ``max_seconds`` (but at
least ``min_calls`` times), and summarises the per-call latencies like a load run at concurrency 1.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import TypeAdapter

from benchmark.stats import Summary, summarise
from taxi.trip import Trip

TRIPS = TypeAdapter(list[Trip])  # what every service validates a batch with


def time_calls(
    fn: Callable[[], Any],
    *,
    max_calls: int,
    max_seconds: float,
    min_calls: int = 0,
    warmup: int = 5,
    rows_per_call: int = 1,
) -> Summary:
    for _ in range(warmup):
        fn()
    latencies: list[float] = []
    began = time.perf_counter()
    deadline = began + max_seconds
    while len(latencies) < max_calls and (len(latencies) < min_calls or time.perf_counter() < deadline):
        start = time.perf_counter()
        fn()
        latencies.append(time.perf_counter() - start)
    return summarise(latencies, 0, time.perf_counter() - began, rows_per_call)


def load_fast_path() -> tuple[Any, Any]:
    """(compile_trip_pipeline, FastPathError) from ``taxi.fast_path``, or (None, why) while it does not exist."""
    try:
        from taxi.fast_path import FastPathError, compile_trip_pipeline
    except ImportError as exc:
        return None, f"not available ({exc})"
    return compile_trip_pipeline, FastPathError


def max_abs_difference(answers: Any, reference: np.ndarray) -> float:
    """The largest |answer - reference| (inf when the counts differ or an answer is not a finite number)."""
    got = np.asarray(answers, dtype="float64")
    if got.shape != reference.shape or not np.isfinite(got).all():
        return float("inf")
    return float(np.max(np.abs(got - reference))) if len(got) else 0.0


def validation_bodies(payloads: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bytes]:
    """The same trips as Python dicts (validate_python) and as JSON bytes (validate_json)."""
    return payloads, json.dumps(payloads).encode()
