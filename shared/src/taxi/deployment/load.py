"""Traffic against the running service: a load generator, and the request helpers the canary and A/B test share.

    with LoadGenerator("http://127.0.0.1:8000", trips, threads=4) as load:
        ...                                  # swap the champion, run a canary, ...
    print(load.stats().to_text())            # requests, failures (with reasons), versions, variants, p50/p95

``LoadGenerator`` sends single-trip ``POST /predict`` requests from ``threads`` threads, each with its own
keep-alive ``httpx.Client``, cycling through the trips, until it is stopped: as fast as the service answers,
or at about ``rate`` requests a second in all (steady live traffic that leaves the CPU to other work, such as
the CD flow beside it on a 2-core machine; a thread that falls behind does not burst to catch up). Every
request carries its own ``X-Routing-Key`` (``load-<thread>-<n>``), so a served challenger gets its share of
the load. A request **fails** when it gets anything but a 200 with one prediction, or a transport error
(refused connection, timeout, ...); failures are counted by kind, with the first few reasons kept word for
word, and never raise: a generator pointed at a stopped service just counts refused connections (pausing
``retry_pause`` seconds after each transport error, so it does not spin). After a failed request a thread
opens a fresh connection (the service drops a keep-alive connection after a 500 from a model that raised; the
next request on it would fail too, and be counted twice for one fault). Latency percentiles are client-side
wall time of the successful requests (HTTP + JSON + model), what a caller waits.

The helpers:
- ``trip_payloads(trips)``: a trip frame (TLC columns, or ``taxi.model.INPUT_COLUMNS``) -> the JSON bodies a
  client sends, dropping the rows the API would refuse with a 422 (so a failure means the service failed,
  not the data), with the index of the rows kept;
- ``read_deployment(base_url)``: which versions ``GET /model`` says are served, and the challenger's share;
- ``routing_key(variant, share, prefix)``: a routing key that ``taxi.routing.variant_for`` (the hash the
  service itself uses) sends to that variant, to reach a chosen variant through the real split.
"""

from __future__ import annotations

import functools
import ssl
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import numpy as np
import pandas as pd

from taxi.api_payloads import trip_payloads  # re-exported: the canary and A/B test send them too
from taxi.routing import CHALLENGER, CHAMPION, variant_for
from taxi.serving import ROUTING_HEADER

MAX_REASONS = 5
MAX_REASON_CHARS = 300
MAX_KEY_TRIES = 100_000


class ServiceUnavailable(RuntimeError):
    """The service could not say what it serves (``GET /model`` failed or had no hot-swap status)."""


# ---- request helpers ----


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def new_client(base_url: str, timeout: float) -> httpx.Client:
    """A keep-alive client. One TLS context is shared by all of them: building one per client costs ~60 ms,
    and clients are made afresh after every failed request."""
    return httpx.Client(base_url=base_url, timeout=timeout, verify=_tls_context())


def routing_key(variant: str, share: float, prefix: str) -> str:
    """The first key ``<prefix>-<j>`` (j = 0, 1, ...) that ``variant_for(key, share)`` sends to ``variant``."""
    if variant not in (CHAMPION, CHALLENGER):
        raise ValueError(f"unknown variant {variant!r}")
    if (variant == CHALLENGER and share <= 0) or (variant == CHAMPION and share >= 1):
        raise ValueError(f"no routing key reaches the {variant} when the challenger's share is {share}")
    for j in range(MAX_KEY_TRIES):
        key = f"{prefix}-{j}"
        if variant_for(key, share) == variant:
            return key
    raise ValueError(f"no routing key reaches the {variant} in {MAX_KEY_TRIES} tries (share {share})")


@dataclass(frozen=True)
class ServedVersions:
    """What ``GET /model`` says the service serves now."""

    champion: str
    challenger: str | None
    challenger_share: float


def read_deployment(base_url: str, *, timeout: float = 10.0) -> ServedVersions:
    """The served champion and challenger versions and the challenger's share, from ``GET /model``."""
    try:
        with new_client(base_url, timeout) as http:
            response = http.get("/model")
    except httpx.HTTPError as exc:
        raise ServiceUnavailable(f"GET {base_url}/model failed: {describe_error(exc)}") from exc
    if response.status_code != 200:
        raise ServiceUnavailable(f"GET {base_url}/model answered {response.status_code}: {response.text[:200]}")
    body = response.json()
    if "hot_swap" not in body:
        raise ServiceUnavailable(f"GET {base_url}/model shows no hot-swap status: not a service with a challenger")
    challenger = body.get("challenger") or {}
    share = float(body["hot_swap"].get("challenger_share") or 0.0)
    return ServedVersions(str(body.get("version")), challenger.get("version"), share)


def percentile_ms(seconds: list[float] | np.ndarray, q: float) -> float | None:
    """The ``q``-th percentile of durations in seconds, in milliseconds (None when there are none)."""
    if len(seconds) == 0:
        return None
    return round(float(np.percentile(np.asarray(seconds, dtype="float64"), q)) * 1000, 2)


def describe_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:MAX_REASON_CHARS]


# ---- the load generator ----


@dataclass(frozen=True)
class LoadStats:
    """What a ``LoadGenerator`` saw, so far or in all."""

    requests: int
    failures: int
    failure_kinds: dict[str, int]  # "HTTP 500", "ConnectError", ... -> count
    first_failures: list[str]  # the first few reasons, word for word
    by_version: dict[str, int]  # successful requests per model version
    by_variant: dict[str, int]  # successful requests per variant
    p50_ms: float | None
    p95_ms: float | None
    seconds: float

    @property
    def ok(self) -> int:
        return self.requests - self.failures

    @property
    def failure_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "failure_rate": self.failure_rate}

    def to_text(self) -> str:
        rate = self.requests / self.seconds if self.seconds else 0.0
        latency = "-" if self.p50_ms is None else f"p50 {self.p50_ms:.1f} ms, p95 {self.p95_ms:.1f} ms"
        lines = [
            f"{self.requests} requests in {self.seconds:.1f} s ({rate:.0f}/s), {self.failures} failed; {latency}",
            "  versions: " + (", ".join(f"v{v}: {n}" for v, n in sorted(self.by_version.items())) or "-"),
            "  variants: " + (", ".join(f"{v}: {n}" for v, n in sorted(self.by_variant.items())) or "-"),
        ]
        if self.failures:
            lines.append("  failures: " + ", ".join(f"{k}: {n}" for k, n in self.failure_kinds.items()))
            lines += [f"    {reason}" for reason in self.first_failures]
        return "\n".join(lines)


@dataclass
class _Tally:
    requests: int = 0
    failure_kinds: Counter = field(default_factory=Counter)
    first_failures: list[str] = field(default_factory=list)
    by_version: Counter = field(default_factory=Counter)
    by_variant: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)


class LoadGenerator:
    """Single-trip ``/predict`` requests from ``threads`` threads until stopped (see module doc).

    A context manager (``with LoadGenerator(...) as load:``), or ``start()`` / ``stop()``; ``stats()`` any time.
    """

    def __init__(
        self,
        base_url: str,
        trips: pd.DataFrame,
        *,
        threads: int = 4,
        timeout: float = 10.0,
        retry_pause: float = 0.05,
        key_prefix: str = "load",
        rate: float | None = None,
    ):
        if threads < 1:
            raise ValueError(f"threads must be at least 1; got {threads}")
        if rate is not None and not rate > 0:
            raise ValueError(f"rate must be a positive number of requests a second (or None: no limit); got {rate}")
        self.base_url = base_url.rstrip("/")
        self.payloads, _ = trip_payloads(trips)
        if not self.payloads:
            raise ValueError("no trip the API would accept: nothing to send")
        self.threads = threads
        self.timeout = timeout
        self.retry_pause = retry_pause
        self.key_prefix = key_prefix
        self.rate = rate
        self._lock = threading.Lock()
        self._tally = _Tally()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._started: float | None = None
        self._stopped: float | None = None

    def __enter__(self) -> LoadGenerator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return any(worker.is_alive() for worker in self._workers)

    def start(self) -> None:
        if self.running:
            raise RuntimeError("the load generator is already running")
        self._stop = threading.Event()
        self._started, self._stopped = time.perf_counter(), None
        self._workers = [
            threading.Thread(target=self._work, args=(n, self._stop), name=f"load-{n}", daemon=True)
            for n in range(self.threads)
        ]
        for worker in self._workers:
            worker.start()

    def stop(self) -> LoadStats:
        """Stop sending (requests in flight finish, up to ``timeout``) and return the stats."""
        self._stop.set()
        for worker in self._workers:
            worker.join(self.timeout + 5)
        if self._started is not None and self._stopped is None:
            self._stopped = time.perf_counter()
        return self.stats()

    def stats(self) -> LoadStats:
        with self._lock:
            t = self._tally
            failures = sum(t.failure_kinds.values())
            latencies = list(t.latencies)
            snapshot = (t.requests, failures, dict(t.failure_kinds), list(t.first_failures))
            versions, variants = dict(t.by_version), dict(t.by_variant)
        end = self._stopped if self._stopped is not None else time.perf_counter()
        seconds = end - self._started if self._started is not None else 0.0
        return LoadStats(
            *snapshot,
            by_version=versions,
            by_variant=variants,
            p50_ms=percentile_ms(latencies, 50),
            p95_ms=percentile_ms(latencies, 95),
            seconds=round(seconds, 3),
        )

    def _work(self, n: int, stop: threading.Event) -> None:
        count = len(self.payloads)
        i = n * count // self.threads  # each thread starts at its own place in the trips
        sent = 0
        interval = self.threads / self.rate if self.rate else 0.0  # seconds between this thread's requests
        due = time.perf_counter() - interval  # when this thread's next request is due
        http = new_client(self.base_url, self.timeout)
        try:
            while not stop.is_set():
                if interval:
                    due = max(due + interval, time.perf_counter())  # behind schedule: send now, no burst after
                    if stop.wait(max(0.0, due - time.perf_counter())):
                        break
                payload = self.payloads[i % count]
                headers = {ROUTING_HEADER: f"{self.key_prefix}-{n}-{sent}"}
                i, sent = i + 1, sent + 1
                start = time.perf_counter()
                try:
                    response = http.post("/predict", json=payload, headers=headers)
                    ok = self._record_response(response, time.perf_counter() - start)
                except Exception as exc:  # transport errors above all; nothing may escape a worker
                    self._record_failure(type(exc).__name__, describe_error(exc))
                    ok = False
                    stop.wait(self.retry_pause)
                if not ok:  # the server may drop the connection after an error: the next request gets a new one
                    http.close()
                    http = new_client(self.base_url, self.timeout)
        finally:
            http.close()

    def _record_response(self, response: httpx.Response, seconds: float) -> bool:
        if response.status_code != 200:
            self._record_failure(f"HTTP {response.status_code}", f"HTTP {response.status_code}: {response.text}")
            return False
        body = response.json()
        if not isinstance(body, dict) or len(body.get("predictions") or []) != 1:
            self._record_failure("bad body", f"a 200 without one prediction: {response.text}")
            return False
        with self._lock:
            t = self._tally
            t.requests += 1
            t.by_version[str(body.get("model_version"))] += 1
            t.by_variant[str(body.get("variant") or CHAMPION)] += 1
            t.latencies.append(seconds)
        return True

    def _record_failure(self, kind: str, reason: str) -> None:
        with self._lock:
            t = self._tally
            t.requests += 1
            t.failure_kinds[kind] += 1
            if len(t.first_failures) < MAX_REASONS:
                t.first_failures.append(reason[:MAX_REASON_CHARS])
