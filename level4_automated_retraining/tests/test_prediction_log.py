"""The prediction log: every answered trip is kept (a row once read back); a store that fails never fails a
prediction; what was acknowledged as written survives `kill -9`.
The real app over HTTP on loopback, real SQLite files."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import func, select

from level4.prediction_log import (
    BATCHES,
    REQUESTS,
    LoggedRequest,
    PredictionLog,
    PredictionStore,
    _Pending,
    pack,
    read_predictions,
)
from level4.service import create_app
from taxi.api_payloads import trip_payloads
from taxi.generator import generate_month
from taxi.hotswap import LoadedModel
from taxi.serving import serve_in_thread
from taxi.smoke import SAMPLE_TRIP, wait_until_healthy
from taxi.trip import Trip
from taxi.trip_columns import TripColumns

TRIPS, _ = trip_payloads(generate_month("2024-03", rows=200, seed=3))


def rows(store: PredictionStore) -> list:
    """Every logged trip, read back (one row each)."""
    store.ensure_schema()
    with store.engine.connect() as connection:
        return list(read_predictions(connection).itertuples())


def metric(text: str, name: str) -> float:
    return sum(float(line.rpartition(" ")[2]) for line in text.splitlines() if line.startswith(name))


def test_every_answered_trip_is_logged_with_its_version_and_variant(registry, tmp_path):
    registry.register("ab", "champion", "challenger")  # v1 champion, v2 challenger on half the traffic
    settings = registry.settings_for(tmp_path, model_name="ab", challenger_share=0.5)
    app = create_app(settings)
    answers = []
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        for i in range(20):
            body = TRIPS[i] if i % 2 else TRIPS[i * 3 : i * 3 + 3]  # single trips and lists of three
            response = client.post("/predict", json=body)
            assert response.status_code == 200, response.text
            answers.append(response.json())
        assert app.state.prediction_log.flush(timeout=30)
        text = client.get("/metrics").text
    logged = rows(app.state.store)
    assert len(logged) == sum(len(a["predictions"]) for a in answers) == 10 * 1 + 10 * 3
    by_request = {a["request_id"]: a for a in answers}
    for row in logged:
        answer = by_request[row.request_id]
        assert (row.model_version, row.variant) == (answer["model_version"], answer["variant"])
        assert row.prediction == pytest.approx(answer["predictions"][row.row])
    assert {row.variant for row in logged} == {"champion", "challenger"}
    assert {(row.variant, row.model_version) for row in logged} == {("champion", "1"), ("challenger", "2")}
    assert metric(text, "taxi_prediction_log_written_total") == len(logged)
    assert metric(text, "taxi_prediction_log_dropped_total") == 0
    assert metric(text, "taxi_prediction_log_writer_cpu_seconds_total") > 0  # the writer's own processor time


def test_an_unreachable_store_never_fails_a_prediction(registry, tmp_path, caplog):
    folder = tmp_path / "not-a-database"
    folder.mkdir()  # a directory where the database file should be: SQLite cannot open it
    app = create_app(registry.settings_for(tmp_path, prediction_store=f"sqlite:///{folder}"))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        for i in range(5):
            response = client.post("/predict", json=TRIPS[i * 2 : i * 2 + 2])
            assert response.status_code == 200, response.text
        assert app.state.prediction_log.flush(timeout=30)
        text = client.get("/metrics").text
        assert client.get("/health").status_code == 200
        feedback = client.post("/feedback", json={"request_id": "x", "actual_duration_min": 3})
    assert metric(text, 'taxi_prediction_log_dropped_total{reason="store_error"}') == 10
    assert metric(text, "taxi_prediction_log_written_total") == 0
    assert metric(text, "taxi_prediction_log_last_write_ok") == 0
    assert "dropping predictions (store_error" in caplog.text and "the service keeps answering" in caplog.text
    assert feedback.status_code == 503 and "cannot be reached" in feedback.json()["detail"]


def test_a_writer_that_falls_behind_keeps_memory_bounded(tmp_path):
    log = PredictionLog(PredictionStore(f"sqlite:///{tmp_path / 'p.db'}"), max_queue_rows=5)  # writer not started
    served = LoadedModel(model=None, version="1")
    trip = Trip.model_validate(SAMPLE_TRIP)
    for i in range(8):
        log.record(f"r{i}", served, [trip], np.array([10.0]))
    stats = log.stats()
    assert (stats.queued_rows, stats.dropped["queue_full"], stats.written) == (5, 3, 0)
    log.start()
    assert log.flush(timeout=30)
    log.stop()
    assert log.stats().written == 5 and len(rows(log.store)) == 5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(registry, store: Path, port: int, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "LEVEL4_TRACKING_URI": registry.tracking_uri,
        "LEVEL4_MODEL_NAME": "trip-duration",
        "LEVEL4_PREDICTION_STORE": f"sqlite:///{store}",
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
    }
    command = [str(Path(sys.executable).parent / "level4"), "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    wait_until_healthy(f"http://127.0.0.1:{port}", timeout=120, alive=lambda: process.poll() is None)
    return process


def test_acknowledged_records_survive_kill_9(registry, tmp_path):
    store = tmp_path / "predictions.db"
    port = _free_port()
    server = _serve(registry, store, port, tmp_path / "serve.log")
    url = f"http://127.0.0.1:{port}"
    try:
        ids = [httpx.post(f"{url}/predict", json=TRIPS[i : i + 5], timeout=30).json()["request_id"] for i in range(20)]
        deadline = time.monotonic() + 60  # a wait for the writer, not a timing assertion
        while metric(httpx.get(f"{url}/metrics").text, "taxi_prediction_log_written_total") < 100:
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-2000:]
            time.sleep(0.1)
    finally:
        os.kill(server.pid, signal.SIGKILL)  # no shutdown, no flush: only what was committed can be there
        server.wait()
    assert server.returncode == -signal.SIGKILL
    logged = rows(PredictionStore(f"sqlite:///{store}"))
    assert len(logged) == 100 and {row.request_id for row in logged} == set(ids)

    server = _serve(registry, store, port, tmp_path / "serve2.log")  # the service starts again on the same store
    try:
        assert httpx.post(f"{url}/predict", json=TRIPS[0], timeout=30).status_code == 200
    finally:
        server.terminate()  # a clean stop writes what is queued
        server.wait(30)
    with PredictionStore(f"sqlite:///{store}").engine.connect() as connection:
        assert connection.execute(select(func.sum(BATCHES.c.trips))).scalar() == 101  # trips
        assert connection.execute(select(func.count()).select_from(REQUESTS)).scalar() == 21  # in 21 requests


@pytest.mark.parametrize("passengers", [2, None])
def test_a_single_trip_is_packed_as_a_batch_of_one_is(passengers):
    """The writer gathers single trips straight from their objects: the very batch the columns path makes."""
    trip = Trip.model_validate({**SAMPLE_TRIP, "lpep_pickup_datetime": "2024-03-05T13:15:07.250000+00:00",
                                "passenger_count": passengers})  # fmt: skip
    predictions = np.array([12.5])
    item = _Pending(1, "r1", time.time(), "3", "challenger", 1, [trip], None, predictions)
    columns = LoggedRequest("r1", item.logged_at, "3", "challenger", TripColumns.of([trip]), predictions)
    assert pack([item, item]) == pack([columns.pending(), columns.pending()])


def test_a_batch_of_single_trips_and_lists_reads_back_in_order(tmp_path):
    """Single trips and lists of trips, answered by two models, in one batch: each trip comes back as it was
    logged, in its request and position."""
    store = PredictionStore(f"sqlite:///{tmp_path / 'p.db'}")
    champion, challenger = LoadedModel(model=None, version="7"), LoadedModel(None, "8", variant="challenger")
    log = PredictionLog(store)  # the writer starts once everything is queued: one batch
    trips = [Trip.model_validate(t) for t in TRIPS[:12]]
    sent = []  # (request id, model, trips, predictions)
    for i, (start, end) in enumerate([(0, 1), (1, 4), (4, 5), (5, 6), (6, 11), (11, 12)]):
        served = champion if i % 2 else challenger
        predictions = np.arange(start, end, dtype=np.float64) + 0.5
        columns = TripColumns.of(trips[start:end]) if end - start > 1 else None
        log.record(f"req-{i}", served, trips[start:end], predictions, columns)
        sent.append((f"req-{i}", served, trips[start:end], predictions))
    log.start()
    assert log.flush(timeout=30)
    log.stop()
    with store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(BATCHES)).scalar() == 1
    logged = rows(store)
    expected = [
        (rid, row, s.version, s.variant, t, p)
        for rid, s, ts, ps in sent
        for row, (t, p) in enumerate(zip(ts, ps, strict=True))
    ]
    assert len(logged) == len(expected) == 12
    for got, (request_id, row, version, variant, trip, prediction) in zip(logged, expected, strict=True):
        assert (got.request_id, got.row, got.model_version, got.variant) == (request_id, row, version, variant)
        assert (got.PULocationID, got.DOLocationID) == (trip.PULocationID, trip.DOLocationID)
        assert got.trip_distance == pytest.approx(trip.trip_distance) and got.prediction == prediction
        assert got.pickup_datetime == trip.lpep_pickup_datetime
