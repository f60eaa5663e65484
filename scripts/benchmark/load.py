"""A small closed-loop HTTP load client: keep-alive connections, one thread each, bounded by calls and seconds.

    result = run_load("http://127.0.0.1:8000", "/predict", bodies, concurrency=8, max_calls=2000, max_seconds=8)
    result.summary()  # p50/p99 (ms) of the ok calls, calls/s, rows/s

Each of ``concurrency`` threads holds its own ``http.client.HTTPConnection`` (HTTP/1.1 keep-alive) and POSTs
the next body as soon as the previous answer has been read in full; the bodies are pre-encoded JSON, taken
in turn (call ``i`` sends ``bodies[i % len(bodies)]``). A call counts as ok on a 2xx answer; any other
status, a timeout or a dropped connection counts as an error (a broken connection is then replaced). A run stops
after ``max_calls``, or after ``max_seconds`` once ``min_calls`` have been sent. Only the
ok calls' latencies are kept. The client is standard library only and runs on the same machine as the
server: on loopback, its own CPU time is part of what is measured.
"""

from __future__ import annotations

import http.client
import itertools
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from benchmark.stats import Summary, summarise

HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


@dataclass
class LoadResult:
    """What a load run saw: ok latencies (s), the error count and why, and the window's wall time."""

    latencies_s: list[float]
    errors: int
    seconds: float
    rows_per_call: int = 1
    error_reasons: Counter = field(default_factory=Counter)

    @property
    def calls(self) -> int:
        return len(self.latencies_s) + self.errors

    def summary(self) -> Summary:
        return summarise(self.latencies_s, self.errors, self.seconds, self.rows_per_call)


class _Worker(threading.Thread):
    def __init__(self, host: str, port: int, path: str, bodies: Sequence[bytes], plan: _Plan, timeout: float):
        super().__init__(daemon=True)
        self.host, self.port, self.path, self.bodies, self.plan, self.timeout = host, port, path, bodies, plan, timeout
        self.latencies: list[float] = []
        self.errors = 0
        self.reasons: Counter = Counter()
        self.connection: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self.connection

    def _drop(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def _fail(self, reason: str) -> None:
        self.errors += 1
        self.reasons[reason] += 1

    def run(self) -> None:
        try:  # connect before the start, so no measured call pays for it
            self._connection().connect()
        except OSError:
            self._drop()  # the first call reconnects, and counts the failure
        finally:
            self.plan.start.wait()
        try:
            while (i := self.plan.next_call()) is not None:
                body = self.bodies[i % len(self.bodies)]
                began = time.perf_counter()
                try:
                    connection = self._connection()
                    connection.request("POST", self.path, body, HEADERS)
                    response = connection.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException) as exc:
                    self._fail(type(exc).__name__)
                    self._drop()
                    continue
                elapsed = time.perf_counter() - began
                if 200 <= response.status < 300:
                    self.latencies.append(elapsed)
                else:
                    self._fail(f"HTTP {response.status}")
                if response.will_close:
                    self._drop()
        finally:
            self._drop()


class _Plan:
    """Hands out call numbers until ``max_calls`` are out, or ``max_seconds`` have passed since the start and at
    least ``min_calls`` are out (so a slow server still gives enough samples for a percentile)."""

    def __init__(self, max_calls: int, max_seconds: float, min_calls: int, workers: int):
        self.max_calls = max_calls
        self.max_seconds = max_seconds
        self.min_calls = min(min_calls, max_calls)
        self.start = threading.Barrier(workers + 1)
        self.deadline = 0.0
        self._counter = itertools.count()
        self._lock = threading.Lock()

    def next_call(self) -> int | None:
        with self._lock:
            i = next(self._counter)
        if i >= self.max_calls or (i >= self.min_calls and time.perf_counter() >= self.deadline):
            return None
        return i


def run_load(
    base_url: str,
    path: str,
    bodies: Sequence[bytes],
    *,
    concurrency: int = 1,
    max_calls: int = 1000,
    max_seconds: float = 10.0,
    min_calls: int = 0,
    rows_per_call: int = 1,
    timeout: float = 30.0,
) -> LoadResult:
    """POST ``bodies`` to ``base_url + path`` from ``concurrency`` keep-alive connections; see the module doc."""
    if concurrency < 1 or max_calls < 1 or not bodies:
        raise ValueError("need concurrency >= 1, max_calls >= 1 and at least one body")
    parts = urlsplit(base_url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"an http:// base URL is needed; got {base_url!r}")
    plan = _Plan(max_calls, max_seconds, min_calls, concurrency)
    workers = [_Worker(parts.hostname, parts.port or 80, path, bodies, plan, timeout) for _ in range(concurrency)]
    for worker in workers:
        worker.start()
    plan.deadline = time.perf_counter() + max_seconds
    began = time.perf_counter()
    plan.start.wait()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - began
    reasons: Counter = Counter()
    for worker in workers:
        reasons.update(worker.reasons)
    return LoadResult(
        latencies_s=[t for worker in workers for t in worker.latencies],
        errors=sum(worker.errors for worker in workers),
        seconds=seconds,
        rows_per_call=rows_per_call,
        error_reasons=reasons,
    )
