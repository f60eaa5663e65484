"""Smoke test of a running trip-duration service (any level): health, one prediction, one bad request.

Standard library only, so it runs anywhere the service does."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

SAMPLE_TRIP = {
    "PULocationID": 74,
    "DOLocationID": 42,
    "trip_distance": 1.8,
    "lpep_pickup_datetime": "2024-03-05T08:15:00",
}
BAD_TRIP = {**SAMPLE_TRIP, "trip_distance": -3}


class SmokeTestFailed(AssertionError):
    pass


def call_json(url: str, body: Any | None = None, timeout: float = 5.0) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def wait_until_healthy(base_url: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            status, body = call_json(f"{base_url}/health", timeout=2)
            if status == 200:
                return body
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError) as exc:
            last_error = exc
        time.sleep(0.5)
    raise SmokeTestFailed(f"{base_url}/health did not answer 200 within {timeout:.0f} s ({last_error})")


def smoke_test(base_url: str, echo=print) -> float:
    """Returns the sample prediction; raises SmokeTestFailed with the reason."""
    health = wait_until_healthy(base_url)
    echo(f"  GET  /health  -> ok, model version {health['model_version']}")
    status, body = call_json(f"{base_url}/predict", SAMPLE_TRIP)
    if status != 200:
        raise SmokeTestFailed(f"POST /predict answered {status}: {body}")
    minutes = body["predictions"][0]
    if not 1 <= minutes <= 60:
        raise SmokeTestFailed(f"POST /predict gave {minutes} minutes for a 1.8-mile trip")
    echo(f"  POST /predict {json.dumps(SAMPLE_TRIP)}\n       -> {minutes:.1f} minutes")
    status, body = call_json(f"{base_url}/predict", BAD_TRIP)
    fields = [e["loc"][-1] for e in body.get("detail", [])] if isinstance(body, dict) else []
    if status != 422 or "trip_distance" not in fields:
        raise SmokeTestFailed(f"a negative distance should give 422 naming trip_distance; got {status}: {body}")
    echo(f"  POST /predict with trip_distance=-3 -> 422: {body['detail'][0]['msg']}")
    return minutes


def main(base_url: str) -> int:
    """Run the smoke test and say how it went: 0 passed, 1 failed (for the levels' `smoke` commands)."""
    try:
        smoke_test(base_url.rstrip("/"))
    except SmokeTestFailed as exc:
        print(f"smoke test FAILED: {exc}", file=sys.stderr)
        return 1
    print("smoke test passed")
    return 0
