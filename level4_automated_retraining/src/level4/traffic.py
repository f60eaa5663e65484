"""Live traffic for the level's service: a generated month of trips over HTTP in batches, their true durations
back at ``POST /feedback``, and the prediction log's figures from ``/metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from taxi.api_payloads import trip_payloads
from taxi.generator import generate_month
from taxi.model import duration_minutes

TRIPS_PER_MONTH = 3000
BATCH = 100  # trips per POST /predict (the service takes up to 1000)
FEEDBACK_BATCH = 500


@dataclass(frozen=True)
class Traffic:
    month: str
    requests: int
    trips: int
    failed: int
    truth: list[dict[str, Any]]  # feedback items: request_id, index, actual_duration_min


def send_month(url: str, month: str, scenario: str, seed: int, rows: int = TRIPS_PER_MONTH) -> Traffic:
    """A generated month of trips to ``POST /predict`` in batches; the true durations keyed by request id."""
    trips = generate_month(month, rows=rows, scenario=scenario, seed=seed)
    payloads, kept = trip_payloads(trips)
    minutes = duration_minutes(trips.loc[kept]).to_numpy()
    truth, failed, requests = [], 0, 0
    with httpx.Client(base_url=url, timeout=30) as client:
        for start in range(0, len(payloads), BATCH):
            response = client.post("/predict", json=payloads[start : start + BATCH])
            requests += 1
            if response.status_code != 200:
                failed += 1
                continue
            request_id = response.json()["request_id"]
            for index, actual in enumerate(minutes[start : start + BATCH]):
                if 0 < actual <= 24 * 60:  # dirty rows (dropoff before pickup) have no usable truth
                    truth.append({"request_id": request_id, "index": index, "actual_duration_min": float(actual)})
    return Traffic(month, requests, len(payloads), failed, truth)


def post_feedback(url: str, truth: list[dict[str, Any]], token: str | None = None) -> dict[int, int]:
    """POST /feedback in lists (bearing ``token``, the service's feedback token, if any); the number of calls per
    HTTP status."""
    statuses: dict[int, int] = {}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=url, timeout=60, headers=headers) as client:
        for start in range(0, len(truth), FEEDBACK_BATCH):
            status = client.post("/feedback", json=truth[start : start + FEEDBACK_BATCH]).status_code
            statuses[status] = statuses.get(status, 0) + 1
    return statuses


def log_figures(url: str) -> str:
    """The prediction log's line of /metrics: written, dropped, queued, lag."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    values = {}
    for line in text.splitlines():
        if line.startswith(("taxi_prediction_log_", "taxi_feedback_total")):
            name, _, value = line.rpartition(" ")
            values[name.removeprefix("taxi_")] = float(value)
    return ", ".join(f"{k} {v:g}" for k, v in values.items())
