"""Hot swap, canary routing, admin reload and /metrics of the shared service core, on real fitted models.

The registry is a small in-memory stand-in (its aliases are a dict) so that failures can be injected;
test_registry_watch.py runs the same holder against a real sqlite MLflow registry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from taxi.generator import generate_month
from taxi.hotswap import Deployment, LoadedModel, ModelHolder
from taxi.inference import predict_frame
from taxi.model import build_trip_pipeline, prepare_trips
from taxi.routing import variant_for
from taxi.serving import create_app, serve_in_thread
from taxi.trip import Trip, trips_to_frame

GOOD = {"PULocationID": 74, "DOLocationID": 42, "trip_distance": 1.8, "lpep_pickup_datetime": "2024-03-05T08:15:00"}
TOKEN = "s3cret-admin-token"


class TripModel:
    """A fitted raw-trip pipeline as the service serves it."""

    def __init__(self, pipeline: Any, version: str):
        self.pipeline = pipeline
        self.version = version

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.pipeline.predict(frame)

    def describe(self) -> dict[str, Any]:
        return {"name": "trip-duration", "version": self.version}


class NaNModel(TripModel):
    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.full(len(frame), np.nan)


class Registry:
    """Aliases -> versions, a loader counting its calls; versions can be made unloadable, the registry down."""

    def __init__(self, pipelines: dict[str, Any]):
        self.pipelines = pipelines
        self.aliases: dict[str, str | None] = {"champion": "1", "challenger": None}
        self.loads: list[str] = []
        self.broken: set[str] = set()
        self.down = False

    def resolve(self) -> dict[str, str | None]:
        if self.down:
            raise ConnectionError("registry at http://registry:5000 unreachable")
        return dict(self.aliases)

    def load(self, version: str) -> TripModel:
        self.loads.append(version)
        if version in self.broken:
            raise OSError(f"artifact of version {version} is missing")
        if version == "nan":
            return NaNModel(self.pipelines["1"], version)
        return TripModel(self.pipelines[version], version)

    def holder(self, **kwargs: Any) -> ModelHolder:
        holder = ModelHolder(self.resolve, self.load, **kwargs)
        holder.poll(raise_on_error=True)
        return holder


@pytest.fixture(scope="module")
def pipelines() -> dict[str, Any]:
    X, y = prepare_trips(generate_month("2024-01", rows=2000))
    first = build_trip_pipeline({"max_iter": 30}).fit(X, y)
    second = build_trip_pipeline({"max_iter": 30, "learning_rate": 0.3}).fit(X, y)
    return {"1": first, "2": second, "3": first}


@pytest.fixture
def registry(pipelines) -> Registry:
    return Registry(pipelines)


@pytest.fixture(scope="module")
def expected(pipelines) -> dict[str, float]:
    """The prediction for GOOD of each version: a response must carry its own version's prediction."""
    frame = trips_to_frame([Trip.model_validate(GOOD)])
    return {version: float(predict_frame(p, frame)[0]) for version, p in pipelines.items()}


def metric_samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text -> {sample name: [(labels, value)]} (parsing it proves the format)."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(samples, name: str, **labels: str) -> float:
    return sum(v for lab, v in samples.get(name, []) if all(lab.get(k) == x for k, x in labels.items()))


# ---- swap under load (real HTTP) ----


def test_swaps_under_concurrent_load_fail_no_request(registry, expected):
    holder = registry.holder()
    app = create_app(holder)
    results: list[tuple[int, str, float]] = []
    errors: list[str] = []
    stop = threading.Event()

    def client(base_url: str, n: int) -> None:
        batch = [GOOD] * (1 + n % 3)  # single trips and small batches
        with httpx.Client(base_url=base_url, timeout=30.0) as http:  # keep-alive
            while not stop.is_set():
                try:
                    response = http.post("/predict", json=batch)
                    body = response.json()
                    results.append((response.status_code, body.get("model_version"), body["predictions"][-1]))
                except Exception as exc:
                    errors.append(repr(exc))

    with serve_in_thread(app) as base_url:
        threads = [threading.Thread(target=client, args=(base_url, n)) for n in range(8)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        swapped = []
        for version in ["2", "3", "1", "2", "3", "1"]:  # 6 swaps, each loads and warms a new model object
            registry.aliases["champion"] = version
            mark = len(results)
            swapped.append(holder.poll())
            deadline = time.monotonic() + 30  # let each version answer some requests, however busy the machine
            while sum(v == version for _, v, _ in results[mark:]) < 5 and time.monotonic() < deadline:
                time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(60)

    assert all(swapped) and holder.status.swaps["champion"] == 6
    assert not errors, errors[:3]
    statuses = Counter(status for status, _, _ in results)
    assert statuses == {200: len(results)} and len(results) > 30
    assert {version for _, version, _ in results} == {"1", "2", "3"}
    for _, version, prediction in results:  # no response mixes one version's name with another's model
        assert prediction == pytest.approx(expected[version], rel=1e-9)


def test_the_poller_runs_with_the_app_lifespan(registry):
    holder = registry.holder(poll_interval=0.05)
    with TestClient(create_app(holder)) as http:
        registry.aliases["champion"] = "2"
        deadline = time.monotonic() + 20
        while http.get("/health").json()["model_version"] != "2":
            assert time.monotonic() < deadline, "the poller did not pick up the new champion"
            time.sleep(0.05)
        assert http.post("/predict", json=GOOD).json()["model_version"] == "2"
    assert holder._thread is None  # stopped with the app


# ---- failures keep the current model ----


def test_a_failed_load_or_an_unreachable_registry_keeps_the_current_model(registry, caplog):
    holder = registry.holder()
    http = TestClient(create_app(holder))
    caplog.set_level(logging.WARNING, logger="taxi.serving.hotswap")

    registry.aliases["champion"] = "2"
    registry.broken.add("2")
    assert holder.poll() is False and holder.poll() is False  # tried twice, logged once
    assert http.post("/predict", json=GOOD).json()["model_version"] == "1"
    status = http.get("/model").json()["hot_swap"]
    assert status["last_poll_ok"] is False and status["last_error_stage"] == "load"
    assert "loading champion v2: OSError: artifact of version 2 is missing" in status["last_error"]
    assert status["wanted"]["champion"] == "2" and status["serving"]["champion"] == "1"
    failed = [r.getMessage() for r in caplog.records if "reload failed" in r.getMessage()]
    assert len(failed) == 1 and "still serving champion v1" in failed[0]
    samples = metric_samples(http.get("/metrics").text)
    assert value(samples, "taxi_model_reload_failures_total", stage="load") == 2
    assert value(samples, "taxi_model_last_poll_ok") == 0
    ((labels, _),) = samples["taxi_model_reload_error_info"]
    assert labels["stage"] == "load" and "artifact of version 2 is missing" in labels["error"]
    assert value(samples, "taxi_model_served_version", variant="champion") == 1

    registry.down = True
    assert holder.poll() is False
    assert http.post("/predict", json=GOOD).json()["model_version"] == "1"
    status = http.get("/model").json()["hot_swap"]
    assert status["last_error_stage"] == "resolve" and "unreachable" in status["last_error"]
    assert status["last_poll_at"] is not None and status["last_success_at"] < status["last_poll_at"]
    samples = metric_samples(http.get("/metrics").text)
    assert value(samples, "taxi_model_reload_failures_total", stage="resolve") == 1

    registry.down = False
    registry.aliases["champion"] = "nan"  # loads, but its warm-up predictions are NaN: never served
    assert holder.poll() is False
    assert "WarmUpError" in http.get("/model").json()["hot_swap"]["last_error"]

    registry.aliases["champion"] = "3"  # recovers
    assert holder.poll() is True
    assert http.post("/predict", json=GOOD).json()["model_version"] == "3"
    samples = metric_samples(http.get("/metrics").text)
    assert value(samples, "taxi_model_last_poll_ok") == 1 and "taxi_model_reload_error_info" not in samples


def test_without_any_model_the_service_says_why(registry):
    registry.down = True
    holder = ModelHolder(registry.resolve, registry.load)
    with pytest.raises(ConnectionError):
        holder.poll(raise_on_error=True)
    http = TestClient(create_app(holder))
    response = http.post("/predict", json=GOOD)
    assert response.status_code == 503 and "unreachable" in response.json()["detail"]
    assert http.get("/health").status_code == 503
    assert http.get("/model").json()["hot_swap"]["last_error_stage"] == "resolve"


# ---- canary ----


def test_canary_routes_a_share_of_routing_keys_deterministically(registry):
    registry.aliases["challenger"] = "2"
    holder = registry.holder(challenger_share=0.3)
    deployment = holder.current
    assert deployment.versions() == {"champion": "1", "challenger": "2"}

    keys = [f"client-{i}" for i in range(1000)]
    picks = [deployment.pick(key).variant for key in keys]  # the code path every request takes
    assert 0.25 <= picks.count("challenger") / len(keys) <= 0.35
    assert picks == [deployment.pick(key).variant for key in keys]  # the same key, the same variant

    http = TestClient(create_app(holder))
    seen = Counter()
    for key in keys[:60]:
        body = http.post("/predict", json=[GOOD, GOOD], headers={"X-Routing-Key": key}).json()
        variant = variant_for(key, 0.3)
        assert body["variant"] == variant and body["model_version"] == {"champion": "1", "challenger": "2"}[variant]
        assert set(body) == {"predictions", "model_version", "request_id", "variant"}
        seen[variant] += 1
    assert seen["challenger"] > 0 and seen["champion"] > 0
    again = http.post("/predict", json=GOOD, headers={"X-Routing-Key": keys[0]}).json()
    assert again["variant"] == picks[0]
    by_request_id = http.post("/predict", json=GOOD, headers={"X-Request-ID": "req-7"}).json()
    assert by_request_id["variant"] == variant_for("req-7", 0.3)

    model = http.get("/model").json()
    assert model["variant"] == "champion" and model["version"] == "1"
    assert model["challenger"]["version"] == "2" and model["hot_swap"]["challenger_share"] == 0.3


def test_promoting_the_challenger_reuses_it_and_a_broken_challenger_gets_no_traffic(registry):
    registry.aliases["challenger"] = "2"
    holder = registry.holder(challenger_share=0.5)
    challenger = holder.current.challenger
    registry.aliases.update(champion="2", challenger=None)  # promotion
    assert holder.poll() is True
    assert holder.current.champion.model is challenger.model and registry.loads == ["1", "2"]
    assert holder.current.challenger is None

    registry.broken.add("3")
    registry.aliases["challenger"] = "3"
    assert holder.poll() is False
    assert holder.current.challenger is None and holder.current.champion.version == "2"
    assert "loading challenger v3" in holder.status.last_error


# ---- admin reload ----


def test_admin_reload_needs_the_token(registry):
    holder = registry.holder()
    http = TestClient(create_app(holder, admin_token=TOKEN))
    registry.aliases["champion"] = "2"
    loads = len(registry.loads)

    for headers, status in [
        ({}, 401),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401),
        ({"Authorization": "Bearer "}, 401),
        ({"Authorization": "Bearer wrong-token"}, 403),
        ({"Authorization": f"Bearer {TOKEN}x"}, 403),
        ({"Authorization": "Bearer tökén".encode("latin-1")}, 403),  # non-ASCII: no TypeError
    ]:
        response = http.post("/admin/reload", headers=headers)
        assert response.status_code == status, headers
        assert TOKEN not in response.text and set(response.json()) == {"detail"}
    assert len(registry.loads) == loads and holder.status.polls == 1  # only the start-up poll
    assert http.post("/predict", json=GOOD).json()["model_version"] == "1"

    response = http.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and response.json()["changed"] is True
    assert response.json()["hot_swap"]["serving"]["champion"] == "2"
    assert len(registry.loads) == loads + 1
    assert http.post("/predict", json=GOOD).json()["model_version"] == "2"

    registry.down = True
    response = http.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 503 and "unreachable" in response.json()["hot_swap"]["last_error"]


def test_admin_reload_is_disabled_without_a_configured_token(registry):
    holder = registry.holder()
    http = TestClient(create_app(holder))
    registry.aliases["champion"] = "2"
    response = http.post("/admin/reload", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 403 and "no admin token configured" in response.json()["detail"]
    assert registry.loads == ["1"]


# ---- metrics ----


def test_metrics_parse_and_count_requests_per_variant(registry):
    registry.aliases["challenger"] = "2"
    holder = registry.holder(challenger_share=0.3)
    apps = [create_app(holder), create_app(holder)]  # two apps in one process: registries do not collide
    http = TestClient(apps[0])
    sent = Counter()
    for i in range(40):
        body = http.post("/predict", json=[GOOD] * 3, headers={"X-Routing-Key": f"k{i}"}).json()
        sent[body["variant"]] += 1
    http.post("/predict", json={**GOOD, "trip_distance": -1})
    http.get("/no-such-page")

    samples = metric_samples(http.get("/metrics").text)
    for variant, version in [("champion", "1"), ("challenger", "2")]:
        assert (
            value(samples, "taxi_predict_requests_total", variant=variant, version=version, outcome="ok")
            == sent[variant]
        )
        assert value(samples, "taxi_prediction_minutes_count", variant=variant, version=version) == 3 * sent[variant]
        assert value(samples, "taxi_predict_duration_seconds_count", variant=variant) == sent[variant]
        assert value(samples, "taxi_model_served_version", variant=variant) == float(version)
        assert value(samples, "taxi_model_served_info", variant=variant, version=version) == 1
    assert value(samples, "taxi_prediction_minutes_bucket", variant="champion", le="+Inf") == 3 * sent["champion"]
    assert value(samples, "taxi_http_requests_total", route="/predict", status="200") == 40
    assert value(samples, "taxi_http_requests_total", route="/predict", status="422") == 1
    assert value(samples, "taxi_http_requests_total", route="unmatched", status="404") == 1
    assert value(samples, "taxi_http_request_duration_seconds_count", route="/predict") == 41
    assert value(samples, "taxi_model_challenger_share") == 0.3
    assert value(samples, "taxi_model_swaps_total", variant="champion") == 0
    assert value(samples, "taxi_model_polls_total") == 1
    other = metric_samples(TestClient(apps[1]).get("/metrics").text)
    assert value(other, "taxi_predict_requests_total") == 0


def test_a_model_that_raises_is_a_500_counted_for_its_variant(registry):
    class Broken(TripModel):
        def predict(self, frame: pd.DataFrame) -> np.ndarray:
            raise RuntimeError("boom")

    holder = registry.holder()
    ok = holder.current.champion
    holder._current = Deployment(ok, LoadedModel(Broken(None, "9"), "9", "challenger"), 1.0)  # all traffic
    http = TestClient(create_app(holder), raise_server_exceptions=False)
    response = http.post("/predict", json=GOOD)
    assert response.status_code == 500
    assert response.json() | {"request_id": ""} == {
        "detail": "the model failed on this request",
        "request_id": "",
        "model_version": "9",
        "variant": "challenger",
    }
    samples = metric_samples(http.get("/metrics").text)
    assert value(samples, "taxi_predict_requests_total", variant="challenger", version="9", outcome="error") == 1
    assert value(samples, "taxi_http_errors_total", route="/predict", status="500") == 1


# ---- a fixed model (levels 1-2) ----


def test_a_fixed_model_keeps_the_level_1_response_and_gains_metrics(pipelines):
    http = TestClient(create_app(TripModel(pipelines["1"], "7")))
    body = http.post("/predict", json=GOOD).json()
    assert set(body) == {"predictions", "model_version", "request_id"} and body["model_version"] == "7"
    assert http.get("/model").json() == {"name": "trip-duration", "version": "7"}
    assert http.post("/admin/reload").status_code == 404
    samples = metric_samples(http.get("/metrics").text)
    assert value(samples, "taxi_predict_requests_total", variant="champion", version="7") == 1
    assert "/metrics" not in [r.path for r in create_app(TripModel(None, "7"), metrics=False).routes]
