"""Latency statistics: nearest-rank percentiles and a summary of one measurement."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100): the smallest value with at least q % of the values
    at or below it. Never interpolated, so a p99 is a latency that really happened. NaN for no values."""
    if not 0 < q <= 100:
        raise ValueError(f"q must be in (0, 100]; got {q}")
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = math.ceil(q / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


@dataclass(frozen=True)
class Summary:
    """One measurement: latencies of the successful calls, and how many calls there were."""

    ok: int
    errors: int
    seconds: float  # wall time of the measurement window
    p50_ms: float
    p99_ms: float
    rows_per_call: int = 1

    @property
    def calls_per_s(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else math.nan

    @property
    def rows_per_s(self) -> float:
        return self.calls_per_s * self.rows_per_call


def summarise(latencies_s: Sequence[float], errors: int, seconds: float, rows_per_call: int = 1) -> Summary:
    """Latencies in seconds -> a Summary in milliseconds."""
    return Summary(
        ok=len(latencies_s),
        errors=errors,
        seconds=seconds,
        p50_ms=percentile(latencies_s, 50) * 1000,
        p99_ms=percentile(latencies_s, 99) * 1000,
        rows_per_call=rows_per_call,
    )
