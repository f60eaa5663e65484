"""Feedback joins true durations to logged predictions by request id: over HTTP (all or nothing, clear 4xx) and
from a file (`level4 feedback FILE`: the good rows, the rest reported). Never a 500."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from level4.cli import app as cli
from level4.monitor import load_window
from level4.prediction_log import FEEDBACK
from level4.service import create_app
from taxi.api_payloads import trip_payloads
from taxi.generator import generate_month
from taxi.serving import serve_in_thread

TRIPS, _ = trip_payloads(generate_month("2024-03", rows=50, seed=4))


@pytest.fixture(scope="module")
def served(registry, tmp_path_factory):
    """A running service and three answered requests: one single trip (a), a list of three (b), one more (c)."""
    folder = tmp_path_factory.mktemp("feedback")
    app = create_app(registry.settings_for(folder))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        ids = {}
        for name, body in (("a", TRIPS[0]), ("b", TRIPS[1:4]), ("c", TRIPS[4])):
            ids[name] = client.post("/predict", json=body).json()["request_id"]
        yield client, app, ids, folder


def feedback_rows(app) -> int:
    with app.state.store.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(FEEDBACK)).scalar()


def test_feedback_is_joined_by_request_id(served):
    client, app, ids, _ = served
    answer = client.post("/feedback", json={"request_id": ids["a"], "actual_duration_min": 12.5})
    assert answer.status_code == 200 and answer.json()["accepted"] == 1
    pickup = TRIPS[2]["lpep_pickup_datetime"]  # b's second trip: the truth as a dropoff time, 20 minutes later
    dropoff = (datetime.fromisoformat(pickup) + timedelta(minutes=20)).isoformat()
    items = [{"request_id": ids["b"], "index": 1, "dropoff_datetime": dropoff},
             {"request_id": ids["b"], "index": 2, "actual_duration_min": 7}]  # fmt: skip
    answer = client.post("/feedback", json=items)
    assert answer.status_code == 200 and answer.json()["accepted"] == 2
    window = load_window(app.state.store).set_index(["request_id", "row"])
    assert window.loc[(ids["a"], 0), "actual_duration_min"] == 12.5
    assert window.loc[(ids["b"], 1), "actual_duration_min"] == pytest.approx(20.0)
    assert window.loc[(ids["b"], 2), "actual_duration_min"] == 7
    assert window["actual_duration_min"].isna().sum() == 2  # b's first trip and c: no truth yet
    assert 'taxi_feedback_total{outcome="accepted"} 3.0' in client.get("/metrics").text


def test_unknown_ids_and_duplicates_are_clear_4xx_and_store_nothing(served):
    client, app, ids, _ = served
    assert client.post("/feedback", json={"request_id": ids["c"], "actual_duration_min": 9}).status_code == 200
    before = feedback_rows(app)
    again = client.post("/feedback", json={"request_id": ids["c"], "actual_duration_min": 9})
    assert again.status_code == 409 and "recorded before" in again.json()["detail"][0]["msg"]
    unknown = client.post("/feedback", json=[{"request_id": ids["b"], "actual_duration_min": 5},
                                             {"request_id": "no-such-request", "actual_duration_min": 5}])  # fmt: skip
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == [
        {"loc": ["body", 1, "request_id"], "type": "unknown_request",
         "msg": "no logged prediction has request id 'no-such-request' and index 0"},
    ]  # fmt: skip
    out_of_range = client.post("/feedback", json={"request_id": ids["a"], "index": 5, "actual_duration_min": 5})
    assert out_of_range.status_code == 404
    twice = client.post("/feedback", json=[{"request_id": ids["b"], "actual_duration_min": 5}] * 2)
    assert twice.status_code == 409 and "twice in this call" in twice.json()["detail"][0]["msg"]
    assert feedback_rows(app) == before  # all or nothing: b's first trip was not stored either


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({"request_id": "r", "actual_duration_min": -3}, "actual_duration_min", "greater than 0"),
        ({"request_id": "r", "actual_duration_min": 2000}, "actual_duration_min", "less than or equal to 1440"),
        ({"request_id": "r"}, None, "exactly one of actual_duration_min or dropoff_datetime"),
        ({"request_id": "r", "actual_duration_min": 3, "dropoff_datetime": "2024-03-01T10:00"}, None, "exactly one"),
        ({"request_id": "", "actual_duration_min": 3}, "request_id", "at least 1 character"),
        ({"request_id": "r", "index": -1, "actual_duration_min": 3}, "index", "greater than or equal to 0"),
        ({"request_id": "r", "dropoff_datetime": "yesterday"}, "dropoff_datetime", "datetime"),
        ({"request_id": "r", "actual_duration_min": 3, "colour": "red"}, "colour", "Extra inputs are not permitted"),
    ],
)
def test_bad_values_are_422_naming_the_field_and_the_rule(served, body, field, rule):
    client, *_ = served
    answer = client.post("/feedback", json=body)
    assert answer.status_code == 422
    error = answer.json()["detail"][0]
    assert rule in error["msg"]
    if field:
        assert error["loc"][-1] == field


def test_a_dropoff_before_the_pickup_and_broken_json_are_422(served):
    client, _, ids, _ = served
    answer = client.post("/feedback", json={"request_id": ids["b"], "index": 0, "dropoff_datetime": "2001-01-01T00:00"})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "dropoff_datetime"]
    assert "after the logged pickup" in answer.json()["detail"][0]["msg"]
    for raw in (b'{"request_id": "r", "actual_duration_min": NaN}', b"{not json", b"[]", b'"text"'):
        answer = client.post("/feedback", content=raw, headers={"content-type": "application/json"})
        assert answer.status_code == 422, raw


def test_the_batch_path_joins_a_file_and_reports_the_rest(served, monkeypatch, tmp_path):
    client, app, _, folder = served
    more = client.post("/predict", json=TRIPS[10:20]).json()["request_id"]
    app.state.prediction_log.flush()
    lines = [{"request_id": more, "index": i, "actual_duration_min": 10 + i} for i in range(10)]
    lines += [{"request_id": "ghost", "index": 0, "actual_duration_min": 4},  # unknown
              {"request_id": more, "index": 0, "actual_duration_min": 4},     # given twice
              {"request_id": more, "index": 1, "actual_duration_min": -4}]  # invalid  # fmt: skip
    path = tmp_path / "truth.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines))
    monkeypatch.setenv("LEVEL4_PREDICTION_STORE", f"sqlite:///{folder / 'predictions.db'}")
    result = CliRunner().invoke(cli, ["feedback", str(path)])
    assert result.exit_code == 0, result.output
    assert "10 accepted, 1 unknown request ids, 1 duplicates, 1 invalid" in result.output
    assert "row 12: actual_duration_min: Input should be greater than 0" in result.output
    window = load_window(app.state.store).set_index(["request_id", "row"])
    assert window.loc[more, "actual_duration_min"].tolist() == [10.0 + i for i in range(10)]
    missing = CliRunner().invoke(cli, ["feedback", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 1 and "no such file" in missing.output


def test_a_dropoff_with_an_offset_is_converted_to_new_york_time_like_the_pickup(served):
    client, app, _, _ = served
    request_id = client.post("/predict", json={**TRIPS[20], "lpep_pickup_datetime": "2024-03-05T13:15:00Z"}).json()[
        "request_id"
    ]  # logged as 08:15 New York time (EST)
    answer = client.post("/feedback", json={"request_id": request_id, "dropoff_datetime": "2024-03-05T13:30:00Z"})
    assert answer.status_code == 200, answer.text
    window = load_window(app.state.store).set_index(["request_id", "row"])
    assert window.loc[(request_id, 0), "actual_duration_min"] == pytest.approx(15.0)  # not 315


def test_a_feedback_body_over_the_byte_limit_is_413_before_it_is_read(registry, tmp_path):
    app = create_app(registry.settings_for(tmp_path, max_body_bytes=2000))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        items = [{"request_id": f"r{i}", "actual_duration_min": 5} for i in range(100)]
        answer = client.post("/feedback", json=items)
        assert answer.status_code == 413
        assert "the limit is 2000 bytes (max_body_bytes)" in answer.json()["detail"][0]["msg"]
        assert client.post("/feedback", json=items[:1]).status_code == 404  # small enough: it reaches the join


def test_with_a_feedback_token_feedback_needs_it_and_a_refusal_stores_nothing(registry, tmp_path):
    app = create_app(registry.settings_for(tmp_path, feedback_token="s3cret-feedback"))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        request_id = client.post("/predict", json=TRIPS[0]).json()["request_id"]
        app.state.prediction_log.flush()  # the prediction (and the store's tables) written
        item = {"request_id": request_id, "actual_duration_min": 11}
        missing = client.post("/feedback", json=item)
        assert missing.status_code == 401 and missing.json() == {"detail": "missing bearer token"}
        wrong = client.post("/feedback", json=item, headers={"Authorization": "Bearer s3cret-feedbacK"})
        assert wrong.status_code == 403 and wrong.json() == {"detail": "invalid token"}
        assert feedback_rows(app) == 0
        right = client.post("/feedback", json=item, headers={"Authorization": "Bearer s3cret-feedback"})
        assert right.status_code == 200 and feedback_rows(app) == 1
        operation = client.get("/openapi.json").json()["paths"]["/feedback"]["post"]
        assert operation["security"] == [{"FeedbackToken": []}] and {"401", "403"} <= set(operation["responses"])


def test_serve_refuses_a_public_interface_without_a_feedback_token(monkeypatch):
    monkeypatch.delenv("LEVEL4_FEEDBACK_TOKEN", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 1
    assert "cannot serve on 0.0.0.0 without LEVEL4_FEEDBACK_TOKEN" in result.output
