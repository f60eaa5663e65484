"""The prediction store on a real PostgreSQL server (``shared/tests/postgres.py`` starts a throwaway one): the
behaviours the SQLite tests check hold on it too. Without a PostgreSQL server on the machine these tests skip, naming
what to install; with REQUIRE_POSTGRES=1 (CI) they fail instead.

- feedback: ``test_feedback.py``'s HTTP tests themselves, run here against a service whose store is PostgreSQL
  (this module's ``served`` fixture stands in for theirs), plus the file path and concurrent feedback;
- the prediction log: every trip answered by the real app is a row with its version and variant;
- ``load_window``: the same records give the same window on PostgreSQL as on SQLite;
- PostgreSQL stopped mid-run (by its PID): the service keeps answering 200 and counts what it drops, and writes
  again once the server is back.
"""

from __future__ import annotations

import importlib.util
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from typer.testing import CliRunner

from level4.cli import app as cli
from level4.feedback import Feedback, record_feedback
from level4.monitor import load_window
from level4.prediction_log import CONNECT_TIMEOUT_SECONDS, REQUEST_ID_LENGTH, PredictionStore
from level4.service import create_app
from taxi.serving import serve_in_thread


def _module(name: str):
    """A test module beside this one (--import-mode=importlib puts no test folder on sys.path)."""
    spec = importlib.util.spec_from_file_location(f"level4_tests_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- feedback over HTTP: test_feedback.py's tests, on PostgreSQL ----

feedback_tests = _module("test_feedback")
test_feedback_is_joined_by_request_id = feedback_tests.test_feedback_is_joined_by_request_id
test_unknown_ids_and_duplicates_are_clear_4xx_and_store_nothing = (
    feedback_tests.test_unknown_ids_and_duplicates_are_clear_4xx_and_store_nothing
)
test_bad_values_are_422_naming_the_field_and_the_rule = (
    feedback_tests.test_bad_values_are_422_naming_the_field_and_the_rule
)
test_a_dropoff_before_the_pickup_and_broken_json_are_422 = (
    feedback_tests.test_a_dropoff_before_the_pickup_and_broken_json_are_422
)


@pytest.fixture(scope="module")
def served(postgres_server, registry, tmp_path_factory):
    """``test_feedback.served`` with the prediction store on PostgreSQL: three answered requests a, b (three
    trips) and c."""
    folder = tmp_path_factory.mktemp("feedback-postgres")
    postgres_server.start()
    url = postgres_server.new_database("feedback")
    app = create_app(registry.settings_for(folder, prediction_store=url))
    with serve_in_thread(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        ids = {}
        for name, body in (
            ("a", feedback_tests.TRIPS[0]),
            ("b", feedback_tests.TRIPS[1:4]),
            ("c", feedback_tests.TRIPS[4]),
        ):
            ids[name] = client.post("/predict", json=body).json()["request_id"]
        yield client, app, ids, folder


def test_a_feedback_file_of_dropoff_times_is_joined(served, monkeypatch, tmp_path):
    """`level4 feedback FILE` on PostgreSQL, with the truth as dropoff times: durations from the pickups read back
    from PostgreSQL's timestamps."""
    client, app, _, _ = served
    request_id = client.post("/predict", json=feedback_tests.TRIPS[20:25]).json()["request_id"]
    app.state.prediction_log.flush()
    pickups = [datetime.fromisoformat(t["lpep_pickup_datetime"]) for t in feedback_tests.TRIPS[20:25]]
    dropoffs = [pickup + timedelta(minutes=5 + i) for i, pickup in enumerate(pickups)]
    truth = pd.DataFrame({"request_id": request_id, "index": range(5), "dropoff_datetime": dropoffs})
    truth.loc[len(truth)] = ["ghost", 0, pickups[0]]
    truth.to_csv(tmp_path / "truth.csv", index=False)
    monkeypatch.setenv("LEVEL4_PREDICTION_STORE", app.state.store.url)
    result = CliRunner().invoke(cli, ["feedback", str(tmp_path / "truth.csv")])
    assert result.exit_code == 0, result.output
    assert "5 accepted, 1 unknown request ids, 0 duplicates, 0 invalid" in result.output
    window = load_window(app.state.store).set_index(["request_id", "row"])
    assert window.loc[request_id, "actual_duration_min"].tolist() == pytest.approx([5, 6, 7, 8, 9])


def test_concurrent_feedback_for_one_trip_is_stored_once(served):
    """Calls racing on the same trip: PostgreSQL's primary key takes one, the others are duplicates, none fails."""
    client, app, _, _ = served
    request_id = client.post("/predict", json=feedback_tests.TRIPS[30]).json()["request_id"]
    app.state.prediction_log.flush()
    item = [Feedback(request_id=request_id, actual_duration_min=11)]
    barrier = threading.Barrier(6)

    def call(_: int) -> dict[str, int]:
        barrier.wait()
        return record_feedback(app.state.store, item, all_or_nothing=True).counts()

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(call, range(6)))
    assert sorted(o["accepted"] for o in outcomes) == [0] * 5 + [1]
    assert sum(o["duplicate"] for o in outcomes) == 5
    window = load_window(app.state.store).set_index(["request_id", "row"])
    assert window.loc[(request_id, 0), "actual_duration_min"] == 11


# ---- the prediction log ----

log_tests = _module("test_prediction_log")
metric, rows = log_tests.metric, log_tests.rows


def test_every_answered_trip_is_a_row_on_postgres(postgres_url, registry, tmp_path):
    registry.register("ab-postgres", "champion", "challenger")  # v1 champion, v2 challenger on half the traffic
    app = create_app(
        registry.settings_for(tmp_path, model_name="ab-postgres", challenger_share=0.5, prediction_store=postgres_url)
    )
    trips = log_tests.TRIPS
    aware = {**trips[0], "lpep_pickup_datetime": "2024-03-05T13:15:00+00:00"}  # 08:15 in New York
    long_id = "client-" + "x" * 300  # a client's own X-Request-ID, longer than the column
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        answers = [client.post("/predict", json=trips[i * 4 : i * 4 + 4]).json() for i in range(25)]
        answers.append(client.post("/predict", json=aware).json())
        answers.append(client.post("/predict", json=trips[0], headers={"X-Request-ID": long_id}).json())
        assert app.state.prediction_log.flush(timeout=30)
        page = client.get("/metrics").text
    logged = rows(app.state.store)
    assert len(logged) == sum(len(a["predictions"]) for a in answers) == 25 * 4 + 2
    by_request = {a["request_id"][:REQUEST_ID_LENGTH]: a for a in answers}
    for row in logged:
        answer = by_request[row.request_id]
        assert (row.model_version, row.variant) == (answer["model_version"], answer["variant"])
        assert row.prediction == pytest.approx(answer["predictions"][row.row])
    assert {(row.variant, row.model_version) for row in logged} == {("champion", "1"), ("challenger", "2")}
    assert logged[-2].pickup_datetime == datetime(2024, 3, 5, 8, 15)  # New York local time, naive
    assert logged[-1].request_id == long_id[:REQUEST_ID_LENGTH]
    assert logged[0].logged_at.tzinfo is None
    assert abs(logged[0].logged_at - datetime.now(UTC).replace(tzinfo=None)) < timedelta(minutes=5)  # UTC
    assert metric(page, "taxi_prediction_log_written_total") == len(logged)
    assert metric(page, "taxi_prediction_log_dropped_total") == 0


def test_services_starting_together_create_the_tables_once(postgres_url):
    stores = [PredictionStore(postgres_url) for _ in range(6)]  # six engines: as six processes would
    barrier = threading.Barrier(len(stores))

    def create(store: PredictionStore) -> None:
        barrier.wait()
        store.ensure_schema()

    with ThreadPoolExecutor(len(stores)) as pool:
        list(pool.map(create, stores))  # without the advisory lock all but one fail on pg_type's unique index
    with stores[0].engine.connect() as connection:
        kinds = dict(connection.execute(text(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'prediction_batches'"
        )).all())  # fmt: skip
    assert kinds["first_pickup"] == kinds["first_answered"] == "timestamp without time zone"
    assert kinds["pickup_datetime"] == kinds["prediction"] == "bytea"  # the packed columns


def test_an_unreachable_server_is_an_error_not_a_hang(postgres_server):
    """A server that accepts the connection and never answers: connecting gives up (CONNECT_TIMEOUT_SECONDS)."""
    with ThreadPoolExecutor(1) as pool, socket.socket() as silent:  # on failure the socket closes first: no hang
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        store = PredictionStore(f"postgresql+psycopg://nobody@127.0.0.1:{silent.getsockname()[1]}/nothing")
        started = time.monotonic()
        attempt = pool.submit(store.ensure_schema)
        with pytest.raises(SQLAlchemyError, match="timeout"):
            attempt.result(timeout=CONNECT_TIMEOUT_SECONDS * 4)
        assert time.monotonic() - started < CONNECT_TIMEOUT_SECONDS * 4
    store.dispose()


def test_postgres_stopped_mid_run_costs_predictions_not_answers(postgres_server, postgres_url, registry, tmp_path):
    """Stopped (by its PID) while the service runs: every request still answers 200, what could not be written is
    counted as dropped, and the same service writes again once the server is back."""
    app = create_app(registry.settings_for(tmp_path, prediction_store=postgres_url))
    trips = log_tests.TRIPS

    def traffic(client: httpx.Client, requests: int) -> None:
        for i in range(requests):
            response = client.post("/predict", json=trips[i * 2 : i * 2 + 2])
            assert response.status_code == 200, response.text
        assert app.state.prediction_log.flush(timeout=60)

    def counts(client: httpx.Client) -> tuple[float, float, float]:
        page = client.get("/metrics").text
        written = metric(page, "taxi_prediction_log_written_total")
        dropped = metric(page, 'taxi_prediction_log_dropped_total{reason="store_error"}')
        return written, dropped, metric(page, "taxi_prediction_log_last_write_ok")

    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        traffic(client, 10)
        assert counts(client) == (20, 0, 1)
        postgres_server.stop()  # a restart between two writes: the pooled connections are dead, pre-ping notices
        postgres_server.start()
        traffic(client, 5)
        assert counts(client) == (30, 0, 1)
        postgres_server.stop()
        traffic(client, 10)  # the server is down: answered all the same
        assert counts(client) == (30, 20, 0)
        assert client.get("/health").status_code == 200
        feedback = client.post("/feedback", json={"request_id": "x", "actual_duration_min": 3})
        assert feedback.status_code == 503 and "cannot be reached" in feedback.json()["detail"]
        postgres_server.start()
        traffic(client, 5)
        assert counts(client) == (40, 20, 1)
    assert len(rows(app.state.store)) == 40


# ---- the monitoring window ----

monitor_tests = _module("test_monitor")


def test_load_window_is_the_same_on_postgres_as_on_sqlite(postgres_url, tmp_path):
    stores = {"sqlite": PredictionStore(f"sqlite:///{tmp_path / 'p.db'}"), "postgresql": PredictionStore(postgres_url)}
    for store in stores.values():  # the same logged trips and feedback in both
        for month in ("2024-05", "2024-06"):
            monitor_tests.logged(store, month, "stationary", rows=400, feedback=True)
    start, end = datetime(2024, 6, 1), datetime(2024, 7, 1)
    windows = {name: load_window(store, start, end).drop(columns="logged_at") for name, store in stores.items()}
    assert 300 < len(windows["postgresql"]) < 400 and windows["postgresql"]["actual_duration_min"].notna().any()
    assert windows["postgresql"]["pickup_datetime"].between(start, end, inclusive="left").all()
    pd.testing.assert_frame_equal(windows["postgresql"], windows["sqlite"])
    in_utc = datetime(2024, 6, 1, 4, tzinfo=UTC), datetime(2024, 7, 1, 4, tzinfo=UTC)  # New York midnights
    aware = load_window(stores["postgresql"], *in_utc).drop(columns="logged_at")
    pd.testing.assert_frame_equal(aware, windows["sqlite"])
    for store in stores.values():
        store.dispose()
