"""Canary, A/B test and load generator against the real service core (uvicorn on loopback, real fitted models).
The canary and the load generator are shared (``taxi.deployment``; their own unit tests are in
shared/tests/test_deployment_canary_load.py); they are served here, beside this level's A/B test, by the same
fixtures.

The registry is a small in-memory stand-in (aliases in a dict) feeding a real ``ModelHolder``, so that
faulty, shifted, better and worse challengers can be served without MLflow. The fixtures live in this
file (not in a conftest.py) so they never clash with the level's own.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from level3.ab_test import BETTER, INCONCLUSIVE, WORSE, ABTestError, run_ab_test
from taxi.deployment.canary import CanaryConfig, run_canary
from taxi.deployment.load import LoadGenerator, read_deployment
from taxi.generator import generate_month
from taxi.hotswap import ModelHolder
from taxi.model import build_trip_pipeline, prepare_trips
from taxi.routing import CHALLENGER, CHAMPION
from taxi.serving import create_app, serve_in_thread

SHARE = 0.5


class TripModel:
    """A fitted raw-trip pipeline as the service serves it."""

    def __init__(self, pipeline: Any, version: str, *, add_minutes: float = 0.0):
        self.pipeline = pipeline
        self.version = version
        self.add_minutes = add_minutes

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.pipeline.predict(frame)) + self.add_minutes

    def describe(self) -> dict[str, Any]:
        return {"name": "trip-duration", "version": self.version}


class RaisesOnTraffic(TripModel):
    """Passes the holder's warm-up, then raises on every request (the kind of fault only live traffic shows)."""

    armed = False

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        if RaisesOnTraffic.armed:
            raise RuntimeError("boom: challenger cannot predict")
        return super().predict(frame)


class RaisesAlways(TripModel):
    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        raise RuntimeError("broken at load")


class Registry:
    """Aliases -> versions, and how to load each version."""

    def __init__(self, models: dict[str, Any]):
        self.models = models
        self.aliases: dict[str, str | None] = {CHAMPION: "good", CHALLENGER: None}

    def resolve(self) -> dict[str, str | None]:
        return dict(self.aliases)

    def load(self, version: str) -> TripModel:
        return self.models[version](version)


@pytest.fixture(scope="module")
def pipelines() -> dict[str, Any]:
    X, y = prepare_trips(generate_month("2024-01", rows=3000))
    X2, y2 = prepare_trips(generate_month("2024-02", rows=3000))
    shuffled = pd.Series(np.random.default_rng(0).permutation(y.to_numpy()), index=y.index)
    return {
        "good": build_trip_pipeline({"max_iter": 30}).fit(X, y),
        "retrained": build_trip_pipeline({"max_iter": 30}).fit(X2, y2),  # as good, another month's sample
        "noise": build_trip_pipeline({"max_iter": 30}).fit(X, shuffled),  # learnt nothing: clearly worse
    }


@pytest.fixture(scope="module")
def trips() -> pd.DataFrame:
    """A month the models never saw, dropoff times included (the A/B test joins the truth from them)."""
    return generate_month("2024-03", rows=3000, seed=7)


@pytest.fixture(scope="module")
def registry(pipelines) -> Registry:
    return Registry(
        {
            "good": lambda v: TripModel(pipelines["good"], v),
            "good-copy": lambda v: TripModel(pipelines["good"], v),
            "retrained": lambda v: TripModel(pipelines["retrained"], v),
            "noise": lambda v: TripModel(pipelines["noise"], v),
            "shifted": lambda v: TripModel(pipelines["good"], v, add_minutes=30.0),
            "faulty": lambda v: RaisesOnTraffic(pipelines["good"], v),
            "unloadable": lambda v: RaisesAlways(pipelines["good"], v),
        }
    )


@pytest.fixture(scope="module")
def service(registry) -> Iterator[tuple[str, ModelHolder]]:
    holder = ModelHolder(registry.resolve, registry.load, challenger_share=SHARE)
    holder.poll(raise_on_error=True)
    with serve_in_thread(create_app(holder)) as base_url:
        yield base_url, holder


@pytest.fixture
def deploy(service, registry):
    """deploy(champion, challenger) -> base_url, once the holder serves them (challenger None: none)."""
    base_url, holder = service

    def _deploy(champion: str, challenger: str | None, *, expect_challenger: bool = True) -> str:
        registry.aliases.update({CHAMPION: champion, CHALLENGER: challenger})
        holder.poll()
        served = holder.current.versions()
        assert served[CHAMPION] == champion
        assert served[CHALLENGER] == (challenger if expect_challenger else None)
        return base_url

    yield _deploy
    RaisesOnTraffic.armed = False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- canary ----


@pytest.fixture
def quiet_server_errors() -> Iterator[None]:
    """The service logs each model exception with its traceback: expected here, so kept out of the test log."""
    loggers = [logging.getLogger(name) for name in ("taxi.serving", "uvicorn.error")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


def test_canary_fails_a_challenger_that_raises_on_traffic(deploy, trips, quiet_server_errors):
    base_url = deploy("good", "faulty")
    RaisesOnTraffic.armed = True  # warmed up and served; now every request to it fails
    result = run_canary(base_url, trips, CanaryConfig(requests_per_variant=40, min_ok_per_variant=20))
    print("\n" + result.to_text())
    assert not result.passed
    assert result.reason.startswith("challenger vfaulty vs champion vgood: error_rate: challenger 100.0% of 40")
    assert "HTTP 500" in result.reason
    failed = {c.name for c in result.checks if c.passed is False}
    assert {"error_rate", "traffic"} <= failed
    assert result.figures["challenger"]["errors"] == 40 and result.figures["champion"]["error_rate"] == 0
    json.loads(result.to_json())


def test_canary_fails_a_wildly_shifted_challenger(deploy, trips):
    base_url = deploy("good", "shifted")
    config = CanaryConfig(requests_per_variant=40, min_ok_per_variant=20, max_p95_ratio=5, p95_slack_ms=100)
    result = run_canary(base_url, trips, config)
    print("\n" + result.to_text())
    assert not result.passed
    assert "prediction_shift: PSI" in result.reason
    assert [c.name for c in result.checks if c.passed is False] == ["prediction_shift"]
    assert result.figures["psi"] > 1 and result.figures["mean_shift"] > 1
    assert result.figures["mean_abs_difference_min"] == pytest.approx(30, abs=1e-6)  # paired: the same trips
    assert result.figures["paired_trips"] == 40 and result.figures["misrouted"] == 0


def test_canary_passes_an_equivalent_challenger(deploy, trips):
    base_url = deploy("good", "retrained")
    # generous latency limits: this test is about the checks' logic, not the speed of a busy CI machine
    config = CanaryConfig(requests_per_variant=150, min_ok_per_variant=50, max_p95_ratio=5, p95_slack_ms=100)
    result = run_canary(base_url, trips, config)
    print("\n" + result.to_text())
    assert result.passed, result.reason
    figures = result.figures
    assert figures["champion_version"] == "good" and figures["challenger_version"] == "retrained"
    assert figures["challenger"]["versions"] == ["retrained"] and figures["champion"]["versions"] == ["good"]
    assert figures["challenger"]["ok"] == figures["champion"]["ok"] == figures["paired_trips"] == 150
    assert figures["psi"] < 0.2 and abs(figures["mean_shift"]) < 0.15


def test_canary_without_a_challenger_fails_and_says_so(deploy, trips):
    base_url = deploy("good", None)
    result = run_canary(base_url, trips)
    assert not result.passed and result.reason.startswith("no challenger is served")
    # a challenger that fails its warm-up is never served: the canary finds none
    base_url = deploy("good", "unloadable", expect_challenger=False)
    result = run_canary(base_url, trips)
    assert not result.passed and "no challenger is served" in result.reason
    gone = run_canary(f"http://127.0.0.1:{free_port()}", trips)
    assert not gone.passed and "cannot run the canary" in gone.reason and "ConnectError" in gone.reason


# ---- A/B test ----


@pytest.mark.parametrize(
    ("champion", "challenger", "paired", "verdict"),
    [
        ("noise", "good", True, BETTER),
        ("good", "noise", True, WORSE),
        ("good", "good-copy", True, INCONCLUSIVE),
        ("good", "good-copy", False, INCONCLUSIVE),
        ("noise", "good", False, BETTER),
    ],
)
def test_ab_test_verdicts(deploy, trips, champion, challenger, paired, verdict):
    base_url = deploy(champion, challenger)
    result = run_ab_test(base_url, trips, paired=paired, n_boot=2000, seed=3)
    print("\n" + result.to_text())
    assert result.verdict == verdict
    assert result.failed_requests == 0 and result.first_failures == []
    assert result.champion.version == champion and result.challenger.version == challenger
    assert (result.ci_low <= result.rmse_difference <= result.ci_high) or (paired and verdict == INCONCLUSIVE)
    assert result.trips + result.dropped == len(trips) and 0 < result.dropped < 0.1 * len(trips)
    if paired:
        assert result.champion.n == result.challenger.n == result.trips  # every trip scored by both
    else:
        assert result.champion.n + result.challenger.n == result.trips
        assert 0.4 < result.challenger.n / result.trips < 0.6  # the service's 50 % split
    if champion == "good" and challenger == "good-copy" and paired:
        assert result.rmse_difference == result.ci_low == result.ci_high == 0.0
    body = json.loads(result.to_json())
    assert body["verdict"] == verdict and body["champion"]["rmse"] == pytest.approx(result.champion.rmse)
    assert f"verdict: {verdict}" in result.to_text()


def test_ab_test_needs_a_challenger(deploy, trips):
    base_url = deploy("good", None)
    with pytest.raises(ABTestError, match="no challenger is served"):
        run_ab_test(base_url, trips)


# ---- load generator ----


def test_load_generator_counts_requests_across_a_swap_with_no_failure(deploy, service, registry, trips):
    base_url = deploy("good", "retrained")
    _, holder = service
    with LoadGenerator(base_url, trips, threads=3, rate=150) as load:  # paced: steady traffic, as in `make run`
        deadline = time.monotonic() + 30
        while load.stats().requests < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        registry.aliases[CHAMPION] = "good-copy"  # a swap under load
        assert holder.poll()
        mark = load.stats().by_version.get("good-copy", 0)
        while load.stats().by_version.get("good-copy", 0) < mark + 20 and time.monotonic() < deadline:
            time.sleep(0.05)
    stats = load.stats()
    print("\n" + stats.to_text())
    assert not load.running
    assert stats.failures == 0 and stats.first_failures == [] and stats.failure_kinds == {}
    assert stats.requests == stats.ok == sum(stats.by_version.values()) == sum(stats.by_variant.values()) >= 60
    assert {"good", "good-copy", "retrained"} == set(stats.by_version)
    assert set(stats.by_variant) == {CHAMPION, CHALLENGER}
    assert stats.p50_ms is not None and stats.p50_ms <= stats.p95_ms
    assert read_deployment(base_url).champion == "good-copy"
