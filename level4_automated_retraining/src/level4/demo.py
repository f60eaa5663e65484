"""`make run`'s story (part 1: the model is watched), in one process:

1/5 a champion: `dvc repro` (level 3's training stages + this level's `reference` stage) -> @champion
2/5 start the service (`level4 serve`: @champion, every prediction logged to the prediction store)
3/5 live traffic over HTTP, in batches: a quiet month (2024-05) and a month after the world changed
    (2024-08 of the `drift` scenario: faster Manhattan trips, three times the airport runs)
4/5 the truth comes back: POST /feedback with the true durations, joined by request id
5/5 the monitoring flow on each month: drift, quality and performance reports, the Evidently workspace
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from mlflow import MlflowClient

from level4.settings import Settings
from taxi.api_payloads import trip_payloads
from taxi.generator import generate_month
from taxi.model import duration_minutes
from taxi.pipeline import tools
from taxi.service_process import ServiceStartError, service_process

WINDOWS = [("2024-05", "stationary"), ("2024-08", "drift")]  # (month, scenario) of the traffic sent
TRIPS_PER_MONTH = 3000
BATCH = 100  # trips per POST /predict (the service takes up to 1000)
FEEDBACK_BATCH = 500


class DemoError(RuntimeError):
    """The demo cannot run (busy port, a failed training run, the service did not start)."""


@dataclass(frozen=True)
class Traffic:
    month: str
    requests: int
    trips: int
    failed: int
    truth: list[dict[str, Any]]  # feedback items: request_id, index, actual_duration_min


def step(echo: Callable[[str], None], text: str) -> None:
    echo(f"\n\033[1m== {text} ==\033[0m")


def champion(project: Path, settings: Settings, echo: Callable[[str], None]) -> str:
    """@champion: the one registered already, or the first version `dvc repro` trains and registers."""
    client = MlflowClient(settings.tracking_uri)
    aliases = client.get_registered_model(settings.model_name).aliases if _registered(client, settings) else {}
    if "champion" in aliases:
        echo(f"the registry has a champion already: v{aliases['champion']} (`make clean run` starts afresh)")
        return str(aliases["champion"])
    tools.repro(cwd=project, echo=lambda line: echo(line) if line.startswith(_STAGE_LINES) else None)
    version = str(json.loads((project / "reports" / "registered.json").read_text())["version"])
    client.set_registered_model_alias(settings.model_name, "champion", version)
    client.set_model_version_tag(settings.model_name, version, "champion_why", "first release (make run, level 4)")
    echo(f"@champion -> v{version} (the first release; part 2 certifies each retrained model with level 3's gates)")
    return version


_STAGE_LINES = ("train:", "evaluate:", "register:", "reference:")


def _registered(client: MlflowClient, settings: Settings) -> bool:
    return bool(client.search_registered_models(f"name = '{settings.model_name}'"))


def send_month(url: str, month: str, scenario: str, seed: int) -> Traffic:
    """A generated month of trips to ``POST /predict`` in batches; the true durations keyed by request id."""
    trips = generate_month(month, rows=TRIPS_PER_MONTH, scenario=scenario, seed=seed)
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


def post_feedback(url: str, truth: list[dict[str, Any]]) -> dict[int, int]:
    """POST /feedback in lists; the number of calls per HTTP status."""
    statuses: dict[int, int] = {}
    with httpx.Client(base_url=url, timeout=60) as client:
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


def run_demo(project: Path, settings: Settings, port: int, echo: Callable[[str], None] = print) -> list[dict]:
    """Steps 1-5 of `make run` (see module doc); returns the monitoring results."""
    from level4.flows import monitor

    step(echo, "1/5 a champion: dvc repro (ingest -> ... -> register, + the monitoring reference) -> @champion")
    version = champion(project, settings, echo)

    step(echo, f"2/5 start the service on 127.0.0.1:{port}: @champion v{version}, every prediction logged")
    command = [tools.tool("level4"), "serve", "--port", str(port)]
    sent: list[Traffic] = []
    try:
        with service_process(command, port, log_path=project / "build" / "serve.log", env=tools.tool_env()) as url:
            echo(f"serving at {url} (log: build/serve.log); predictions go to {settings.prediction_store}")
            for number, (month, scenario) in enumerate(WINDOWS):
                if number == 0:
                    step(echo, "3/5 live traffic over HTTP, in batches of 100 trips")
                traffic = send_month(url, month, scenario, seed=100 + number)
                sent.append(traffic)
                echo(f"{month} ({scenario}): {traffic.trips} trips in {traffic.requests} requests, "
                     f"{traffic.failed} failed")  # fmt: skip
            echo(f"prediction log: {log_figures(url)}")

            step(echo, "4/5 the truth comes back: POST /feedback (request id + index + true duration)")
            for traffic in sent:
                statuses = post_feedback(url, traffic.truth)
                echo(f"{traffic.month}: {len(traffic.truth)} true durations, answers {statuses}")
            echo(f"metrics: {log_figures(url)}")
    except ServiceStartError as exc:
        raise DemoError(str(exc)) from None
    echo(f"stopped the service on port {port}")

    step(echo, "5/5 the monitoring flow on each month: Evidently reports against the champion's training trips")
    echo("(the first flow run starts Prefect's temporary local server: about 20 s on 2 cores)")
    return [monitor(project_dir=str(project), month=traffic.month) for traffic in sent]


def results_table(results: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "window": r["window"],
            "predictions": r["rows"],
            "with truth": r["rows_with_feedback"],
            "drift share": round(r["drift_share"], 2),
            "drifted": ", ".join(r["drifted_columns"]) or "-",
            "quality": ", ".join(f["check"] for f in r["quality_failures"]) or "ok",
            "RMSE": None if r["rmse"] is None else round(r["rmse"], 2),
        }
        for r in results
    )
