"""Prometheus metrics of the service, served at ``/metrics`` (extra: ``taxi-shared[serving]``).

Each app gets its own ``CollectorRegistry`` (``ServiceMetrics(holder).registry``), so several apps in one
process (tests) never collide; with several uvicorn workers each worker reports its own figures.

HTTP (every route; ``route`` is the route template, ``unmatched`` for paths no route serves):
- ``taxi_http_requests_total{method,route,status}``
- ``taxi_http_errors_total{method,route,status}``: responses with a 5xx status
- ``taxi_http_request_duration_seconds{method,route}``: histogram

Predictions, per ``variant`` (champion / challenger) and model ``version``:
- ``taxi_predict_requests_total{variant,version,outcome}``: ``outcome`` is ``ok`` or ``error`` (the model raised)
- ``taxi_predict_duration_seconds{variant,version}``: histogram of the model call time per request
- ``taxi_prediction_minutes{variant,version}``: histogram of the predicted durations, one per trip

Hot swap (read from the ``ModelHolder`` at scrape time):
- ``taxi_model_served_version{variant}``: the version number served (NaN if not a number)
- ``taxi_model_served_info{variant,version}``: 1 for each version served now
- ``taxi_model_challenger_share``: the share of traffic the challenger gets when one is served
- ``taxi_model_swaps_total{variant}``: times the served version of a variant changed (first load excluded)
- ``taxi_model_reload_failures_total{stage}``: failed polls or reloads, ``stage`` = ``resolve`` or ``load``
- ``taxi_model_polls_total``; ``taxi_model_last_poll_ok`` (1/0); ``taxi_model_last_poll_timestamp_seconds``;
  ``taxi_model_last_success_timestamp_seconds``
- ``taxi_model_seconds_since_last_success``: age of what is served as the registry's answer (alert on it: the
  registry unreachable for minutes); ``taxi_model_consecutive_poll_failures``: failed polls in a row
- ``taxi_model_reload_error_info{stage,error}``: 1 while the last poll failed, with its error

A level adds its own collectors with ``add_collector`` (level 4: the prediction log and feedback).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator

import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from taxi.hotswap import ModelHolder
from taxi.routing import CHALLENGER, CHAMPION

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MINUTES_BUCKETS = (1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class PredictionHistogram(Collector):
    """A histogram of predicted minutes per (variant, version), filled a whole batch at a time with numpy
    (a 1000-trip batch costs one ``searchsorted``, not 1000 ``Histogram.observe`` calls)."""

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...] = MINUTES_BUCKETS):
        self.name = name
        self.documentation = documentation
        self.bounds = np.asarray(buckets, dtype="float64")
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], np.ndarray] = {}
        self._sums: dict[tuple[str, str], float] = {}

    def observe(self, variant: str, version: str, values: np.ndarray) -> None:
        values = np.asarray(values, dtype="float64")
        counts = np.bincount(np.searchsorted(self.bounds, values, side="left"), minlength=len(self.bounds) + 1)
        total = float(np.nansum(values))
        with self._lock:
            key = (variant, version)
            self._counts[key] = self._counts.get(key, 0) + counts
            self._sums[key] = self._sums.get(key, 0.0) + total

    def describe(self) -> list[Metric]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=["variant", "version"])]

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=["variant", "version"])
        with self._lock:
            series = [(key, counts.copy(), self._sums[key]) for key, counts in self._counts.items()]
        for (variant, version), counts, total in series:
            cumulative = np.cumsum(counts)
            buckets = [(floatToGoString(b), float(c)) for b, c in zip(self.bounds, cumulative[:-1], strict=True)]
            family.add_metric([variant, version], [*buckets, ("+Inf", float(cumulative[-1]))], total)
        yield family


class HolderCollector(Collector):
    """The hot-swap figures of a ``ModelHolder``, read when Prometheus scrapes."""

    def __init__(self, holder: ModelHolder):
        self.holder = holder

    def describe(self) -> list[Metric]:
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        yield from self._families(fill=True)

    def _families(self, fill: bool = False) -> Iterator[Metric]:
        status = self.holder.status
        current = self.holder.current
        served = current.versions() if current else {}
        version = GaugeMetricFamily(
            "taxi_model_served_version", "version number served, per variant", labels=["variant"]
        )
        info = GaugeMetricFamily(
            "taxi_model_served_info", "1 for each version served now", labels=["variant", "version"]
        )
        share = GaugeMetricFamily("taxi_model_challenger_share", "share of traffic for the challenger, when served")
        swaps = CounterMetricFamily(
            "taxi_model_swaps", "times the served version of a variant changed", labels=["variant"]
        )
        failures = CounterMetricFamily("taxi_model_reload_failures", "failed polls or reloads", labels=["stage"])
        polls = CounterMetricFamily("taxi_model_polls", "polls of the versions to serve (background and admin)")
        poll_ok = GaugeMetricFamily("taxi_model_last_poll_ok", "1 if the last poll succeeded, 0 if it failed")
        last_poll = GaugeMetricFamily("taxi_model_last_poll_timestamp_seconds", "time of the last poll")
        last_success = GaugeMetricFamily(
            "taxi_model_last_success_timestamp_seconds", "time of the last successful poll"
        )
        since = GaugeMetricFamily(
            "taxi_model_seconds_since_last_success", "seconds since the last successful poll of the registry"
        )
        in_a_row = GaugeMetricFamily("taxi_model_consecutive_poll_failures", "failed polls since the last success")
        error = GaugeMetricFamily(
            "taxi_model_reload_error_info", "1 while the last poll failed, with its error", labels=["stage", "error"]
        )
        if fill:
            for variant in (CHAMPION, CHALLENGER):
                if served.get(variant) is not None:
                    version.add_metric([variant], _number(served[variant]))
                    info.add_metric([variant, str(served[variant])], 1.0)
                swaps.add_metric([variant], float(status.swaps.get(variant, 0)))
            share.add_metric([], self.holder.challenger_share if served.get(CHALLENGER) is not None else 0.0)
            for stage, count in status.failures.items():
                failures.add_metric([stage], float(count))
            polls.add_metric([], float(status.polls))
            if status.last_poll_ok is not None:
                poll_ok.add_metric([], 1.0 if status.last_poll_ok else 0.0)
            if status.last_poll_at is not None:
                last_poll.add_metric([], status.last_poll_at)
            if status.last_success_at is not None:
                last_success.add_metric([], status.last_success_at)
                since.add_metric([], max(0.0, time.time() - status.last_success_at))
            if self.holder.reloadable:
                in_a_row.add_metric([], float(status.consecutive_failures))
            if status.last_poll_ok is False:
                error.add_metric([str(status.last_error_stage), str(status.last_error)], 1.0)
        yield from (version, info, share, swaps, failures, polls, poll_ok, last_poll, last_success, since, in_a_row)
        yield error


class ServiceMetrics:
    """The service's metrics, in a registry of their own (see module doc for the names)."""

    def __init__(self, holder: ModelHolder, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        http = ["method", "route", "status"]
        model = ["variant", "version"]
        self.requests = Counter("taxi_http_requests", "HTTP requests answered", http, registry=self.registry)
        self.errors = Counter("taxi_http_errors", "HTTP responses with a 5xx status", http, registry=self.registry)
        self.latency = Histogram(
            "taxi_http_request_duration_seconds",
            "time to answer an HTTP request",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predict_requests = Counter(
            "taxi_predict_requests",
            "prediction requests per variant and version; outcome ok or error (the model raised)",
            [*model, "outcome"],
            registry=self.registry,
        )
        self.predict_latency = Histogram(
            "taxi_predict_duration_seconds",
            "time the model took to answer one prediction request",
            model,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = PredictionHistogram("taxi_prediction_minutes", "predicted trip durations, minutes")
        self.registry.register(self.predictions)
        self.registry.register(HolderCollector(holder))

    def add_collector(self, collector: Collector) -> None:
        """Serve a level's own figures at ``/metrics`` too (e.g. level 4's prediction log and feedback)."""
        self.registry.register(collector)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        if status >= 500:
            self.errors.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def observe_predictions(self, variant: str, version: str, predictions: np.ndarray, seconds: float) -> None:
        self.predict_requests.labels(variant, version, "ok").inc()
        self.predict_latency.labels(variant, version).observe(seconds)
        self.predictions.observe(variant, version, predictions)

    def observe_predict_error(self, variant: str, version: str) -> None:
        self.predict_requests.labels(variant, version, "error").inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry (content type: ``CONTENT_TYPE``)."""
        return generate_latest(self.registry)


def _number(version: str | None) -> float:
    try:
        return float(version) if version is not None else math.nan
    except ValueError:
        return math.nan
