"""The year replay (``make replay SCENARIO=drift|stationary|data_quality``; ``make level4`` = the drift one):
the whole loop, month by month, in accelerated time.

1. the first champion: ``dvc repro`` trains on the feed's first months, level 3's release certifies it on the
   frozen holdout month, smoke-tests it in staging and promotes it;
2. the service (``level4 serve``: @champion + @challenger, hot swap, every prediction logged), started with
   step 1 and waiting for a champion (``LEVEL4_WAIT_FOR_CHAMPION``), serves the first one;
3. each month: the month's trips over HTTP (a generated month of the scenario), their true durations back at
   ``POST /feedback``, then the ``watch`` flow: monitoring (Evidently), the policy (policy.yaml), and whatever
   it decides: an alert, a quarantine, a retraining that goes through certification and a canary on the
   running service and is promoted with no failed request, or not;
4. the timeline: a table and a PNG (RMSE of the served model, drift share, the events), beside the Evidently
   workspace's history, the decision log, the deployment log and the alerts.

The feed (params.yaml ``ingest``) is the scenario's: the replay sets ``ingest.scenario`` and the first months,
and restores params.yaml at the end (the retraining changes the months as a commit would).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from mlflow import MlflowClient

from level4 import timeline
from level4.release import first_release, project_settings
from level4.traffic import Traffic, post_feedback, send_month
from taxi.deployment.certify import frozen_holdout
from taxi.deployment.params import apply_params
from taxi.months import month_range
from taxi.pipeline import tools
from taxi.pipeline.common import load_params
from taxi.service_process import ServiceStartError, started_service

if TYPE_CHECKING:
    from taxi.pipeline.prefect_server import StartingPrefectServer

SCENARIOS = ("drift", "stationary", "data_quality")
FIRST_MONTH, TRAINING_MONTHS = "2024-01", 2  # the first champion's feed
REPLAY_FROM, REPLAY_MONTHS = "2024-03", 10  # the months of live traffic: March to December
SERVICE_START_SECONDS = 120.0  # after the first release, until the service answers with its champion


class ReplayError(RuntimeError):
    """The replay cannot run: a champion exists already, a busy port, the service did not start."""


@dataclass(frozen=True)
class Replay:
    scenario: str
    months: list[timeline.Month]
    failed_requests: int
    seconds: float
    paths: dict[str, Path]


def step(echo: Callable[[str], None], text: str) -> None:
    echo(f"\n\033[1m== {text} ==\033[0m")


def wait_for_log(url: str, timeout: float = 60.0) -> None:
    """Until the prediction log has written every prediction it was given (nothing queued)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = httpx.get(f"{url}/metrics", timeout=10).text
        queued = next((line for line in text.splitlines() if line.startswith("taxi_prediction_log_queued ")), None)
        if queued is None or float(queued.split()[-1]) == 0:
            return
        time.sleep(0.2)


def served(model_versions: dict[str, int]) -> str:
    """``v1`` or ``v1+v2``: the versions that answered a month's trips (most first)."""
    ordered = sorted(model_versions.items(), key=lambda kv: -kv[1])
    return "+".join(f"v{version}" for version, _ in ordered) or "-"


def outcome_of(watched: dict[str, Any]) -> str:
    release = watched.get("release")
    if release:
        where = f" by {', '.join(release['failed_gates'])}" if release.get("failed_gates") else ""
        return f"v{release['version']} {release['decision']}{where}"
    if watched.get("requested"):
        return "retraining requested (event)"
    return ""


def run_replay(
    project: Path,
    scenario: str,
    port: int,
    *,
    months: list[str] | None = None,
    trips: int = 3000,
    echo: Callable[[str], None] = print,
    prefect: StartingPrefectServer | None = None,
) -> Replay:
    """Steps 1-4 (see module doc) in ``project``, the service on 127.0.0.1:``port``. ``prefect``: the Prefect
    server `level4 replay` started in the background, waited for before the first flow (None: PREFECT_API_URL's,
    or Prefect's own)."""
    if scenario not in SCENARIOS:
        raise ReplayError(f"SCENARIO must be one of {', '.join(SCENARIOS)}; got {scenario!r}")
    months = months or month_range(REPLAY_FROM, REPLAY_MONTHS)
    started = time.perf_counter()
    settings = project_settings(project)
    client = MlflowClient(settings.tracking_uri)
    if client.search_registered_models(f"name = '{settings.model_name}'"):
        raise ReplayError("the registry has a model already: `make clean` first (the replay starts from nothing)")
    original = settings.params_file.read_text()
    token = secrets.token_urlsafe(16)  # the service's admin token: the retraining's canary tells it to reload
    feedback_token = secrets.token_urlsafe(16)  # what the traffic's ground truth is posted with
    try:
        apply_params(settings.params_file, {"ingest.scenario": scenario, "ingest.first_month": FIRST_MONTH,
                                            "ingest.months": TRAINING_MONTHS, "ingest.exclude_months": []})  # fmt: skip
        feed = month_range(FIRST_MONTH, TRAINING_MONTHS)
        # The service starts now and waits for its first champion while it is trained (LEVEL4_WAIT_FOR_CHAMPION).
        env = {**tools.tool_env(), "LEVEL4_ADMIN_TOKEN": token, "LEVEL4_FEEDBACK_TOKEN": feedback_token,
               "LEVEL4_POLL_INTERVAL": "1", "LEVEL4_WAIT_FOR_CHAMPION": "true"}  # fmt: skip
        command = [tools.tool("level4"), "serve", "--port", str(port)]
        rows: list[timeline.Month] = []
        with started_service(command, port, log_path=project / "build" / "serve.log", env=env, cwd=project) as service:
            step(echo, f"1/4 the first champion: dvc repro on {feed[0]}..{feed[-1]} of the feed, certified, "
                       "smoke-tested, promoted")  # fmt: skip
            frozen_holdout(load_params(settings.params_file)["holdout"], settings.holdout_dir)  # while Prefect starts
            from level4.flows import watch  # Evidently and the monitoring flows: imported while Prefect starts too

            if prefect is not None:
                prefect.wait()
                echo(f"(Prefect: a local server for this run, started in the background {prefect.waited:.0f} s ago, "
                     f"answers on {prefect.ui_url}: its UI shows the flow runs)")  # fmt: skip
            record = first_release(project)
            if record["decision"] != "promoted":
                raise ReplayError(f"the first model was not released: {record['decision']}: {record['reason']}")
            echo(f"@champion -> v{record['version']} ({record['reason']})")

            step(echo, f"2/4 the service on 127.0.0.1:{port}: @champion, every prediction logged")
            url = service.wait_healthy(timeout=SERVICE_START_SECONDS)
            echo(f"serving at {url} (log: build/serve.log; started with step 1, it loaded the champion as soon as "
                 f"there was one); the {scenario} scenario's months follow")  # fmt: skip
            step(echo, f"3/4 {len(months)} months of live traffic ({trips} trips each), feedback, watch")
            for number, month in enumerate(months):
                traffic = send_month(url, month, scenario, seed=1000 + number, rows=trips)
                post_feedback(url, traffic.truth, feedback_token)
                wait_for_log(url)
                watched = watch(project_dir=str(project), month=month, service_url=url)
                rows.append(month_row(traffic, watched, client, settings.model_name))
                echo(line_of(rows[-1]))
    except ServiceStartError as exc:
        raise ReplayError(str(exc)) from None
    finally:
        settings.params_file.write_text(original)

    step(echo, "4/4 the timeline")
    title = f"Level 4 replay, scenario '{scenario}': RMSE of the served model, drift, and what the policy did"
    paths = timeline.save(rows, settings.replay_dir, title)
    failed = sum(int(r.failed) for r in rows)
    return Replay(scenario, rows, failed, time.perf_counter() - started, paths)


def month_row(traffic: Traffic, watched: dict[str, Any], client: MlflowClient, name: str) -> timeline.Month:
    result, decision = watched["monitoring"], watched["decision"]
    champion = client.get_registered_model(name).aliases.get("champion")
    quality = ", ".join(f["check"] for f in result["quality_failures"]) or "ok"
    return timeline.Month(
        month=traffic.month, served=served(result["model_versions"]), requests=traffic.requests,
        failed=traffic.failed, rmse=result["rmse"], drift_share=result["drift_share"], quality=quality,
        actions=list(decision["actions"]), outcome=outcome_of(watched), champion_after=f"v{champion}",
    )  # fmt: skip


def line_of(row: timeline.Month) -> str:
    rmse = "-" if row.rmse is None else f"{row.rmse:.2f}"
    return (f"{row.month}: {row.requests} requests ({row.failed} failed), served by {row.served}, RMSE {rmse}, "
            f"drift {row.drift_share:.2f}, quality {row.quality} -> {row.events}; "
            f"champion {row.champion_after}")  # fmt: skip
