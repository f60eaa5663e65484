"""Request ids the service makes are UUIDv7-shaped, unique and ordered by time (``taxi.serving.new_request_id``):
level 4's prediction log indexes them, and time-ordered keys are appended to that index instead of scattered
through it. A client's own ``X-Request-ID`` is kept as it is."""

from __future__ import annotations

import time
import uuid

from fastapi.testclient import TestClient

from taxi.generator import generate_month
from taxi.model import build_model, prepare
from taxi.serving import SklearnModel, create_app, new_request_id

GOOD = {"PULocationID": 74, "DOLocationID": 42, "trip_distance": 1.8, "lpep_pickup_datetime": "2024-03-05T08:15:00"}


def test_ids_are_uuid7_hex_unique_and_sorted_by_the_millisecond_they_were_made():
    ids = [new_request_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for value in ids[:100]:
        parsed = uuid.UUID(value)
        assert len(value) == 32 and value == parsed.hex
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    first = new_request_id()
    time.sleep(0.003)
    later = new_request_id()
    assert first < later  # a later millisecond sorts after
    millis = int(later[:12], 16)
    assert abs(millis - time.time() * 1000) < 5_000  # the first 48 bits are the Unix time in milliseconds


def test_the_service_answers_with_a_time_ordered_id_or_the_clients_own():
    X, y = prepare(generate_month("2024-03", rows=1000, seed=3))
    http = TestClient(create_app(SklearnModel(build_model({"max_iter": 10}).fit(X, y), {"version": "1"})))
    made = []
    for _ in range(3):
        answer = http.post("/predict", json=GOOD)
        assert answer.status_code == 200 and answer.headers["x-request-id"] == answer.json()["request_id"]
        made.append(answer.json()["request_id"])
        time.sleep(0.002)
    assert made == sorted(made) and all(uuid.UUID(i).version == 7 for i in made)
    own = http.post("/predict", json=GOOD, headers={"X-Request-ID": "client-42"})
    assert own.json()["request_id"] == own.headers["x-request-id"] == "client-42"
