"""`make run`'s story, in one process (Prefect's local server starts once, not once a step):

    1/5 the first candidate: dvc repro (train + register) -> certify -> staging smoke test -> champion
        (no canary: there is no champion to compare it with)
    2/5 start the service (`level3 serve`: @champion, polling the registry, an admin token for this run); it
        starts in the background, while the next candidate trains
    3/5 a better v2 (three training months instead of one) through certify -> staging -> canary -> champion,
        while a load generator sends live traffic: it reports how many requests failed across the swap
    4/5 a bad candidate (trained on months where vendor 2 reports kilometres) is rejected by the gates;
        the service keeps serving the champion
    then the service is stopped, and params.yaml is restored (the flow edits it as a commit would)
    5/5 what was recorded: `level3 status` (versions, certification, aliases, the last deployment events),
        printed from this process rather than by a command of its own (seconds of imports saved)

The candidates differ only in the flow's parameters (``cd_pipeline(params={...})``): nobody edits a file.

What waits on nothing runs beside what it does not depend on (2 cores: a minute, not three): Prefect's local server
starts first thing, in the background (``level3 demo`` starts it, ``taxi.pipeline.prefect_server``), while this
process imports and writes the frozen holdout; the service starts while v2 trains.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow import MlflowClient

from level3.flows import cd_pipeline, project_settings, train_candidate
from level3.settings import Settings
from level3.status import status_lines
from taxi.deployment.background import in_background
from taxi.deployment.certify import frozen_holdout
from taxi.deployment.deployer import DeploymentLog
from taxi.deployment.load import LoadGenerator
from taxi.generator import generate_month
from taxi.pipeline import tools
from taxi.pipeline.common import load_params
from taxi.service_process import ServiceStartError, service_process
from taxi.smoke import call_json

if TYPE_CHECKING:
    from taxi.pipeline.prefect_server import StartingPrefectServer

BETTER = {"ingest.months": 4}  # train on 2024-01..03 (v1: 2024-01 only), test on 2024-04
BROKEN_FEED = {"ingest.first_month": "2024-07", "ingest.months": 3, "ingest.scenario": "data_quality"}
LIVE_MONTH = "2024-05"  # the trips the load generator sends
LIVE_RATE = 30.0  # requests a second: steady live traffic, not a benchmark that takes the CPU from the CD flow


class DemoError(RuntimeError):
    """The demo cannot run (busy port, no champion yet, the service did not start)."""


def step(echo: Callable[[str], None], text: str) -> None:
    echo(f"\n\033[1m== {text} ==\033[0m")


@contextmanager
def service(port: int, token: str, log_path: Path) -> Iterator[str]:
    """`level3 serve` on 127.0.0.1:``port`` with ``token`` as its admin token, until the block ends."""
    command = [tools.tool("level3"), "serve", "--port", str(port)]
    env = {**tools.tool_env(), "LEVEL3_ADMIN_TOKEN": token}
    try:
        with service_process(command, port, log_path=log_path, env=env) as url:
            yield url
    except ServiceStartError as exc:
        raise DemoError(str(exc)) from None


def prefect_ready(prefect: StartingPrefectServer | None) -> str:
    """Wait for the Prefect server started in the background; what to say about it."""
    if prefect is None:
        return f"(Prefect: the server at {os.environ.get('PREFECT_API_URL') or 'PREFECT_API_URL'})"
    prefect.wait()
    return (f"(Prefect: a local server for this run, started in the background {prefect.waited:.0f} s ago, answers "
            f"on {prefect.ui_url}: its UI shows the flow runs; log: {os.path.relpath(prefect.log_path)})")  # fmt: skip


def _champion(url: str) -> str:
    return str(call_json(f"{url}/health")[1].get("model_version"))


def _train(project: Path, overrides: dict[str, Any], echo: Callable[[str], None]) -> int:
    """Train + register a candidate (flow ``train-candidate``); a version decided on before stops the demo."""
    registered = train_candidate(str(project), overrides)
    if registered["decided"]:
        raise DemoError(f"{registered['decided']}: this story starts from an empty registry, run `make clean run`")
    return int(registered["version"])


def show_status(project: Path, settings: Settings, client: MlflowClient, echo: Callable[[str], None]) -> None:
    """Step 5/5: what `level3 status` prints (the deployment log's path as seen from here)."""
    step(echo, "5/5 what was recorded and where to look")
    log = DeploymentLog(Path(os.path.relpath(project / settings.deploy_log)))
    echo("\n".join(status_lines(client, settings.model_name, log)))


def run_demo(
    project: Path,
    settings: Settings,
    port: int,
    echo: Callable[[str], None] = print,
    prefect: StartingPrefectServer | None = None,
) -> list[dict[str, Any]]:
    """Steps 1-5 of `make run` (see module doc); returns the decision records. ``prefect``: the Prefect server
    started in the background for this run, waited for before the first flow (None: PREFECT_API_URL's)."""
    client = MlflowClient(project_settings(project).tracking_uri)
    registered = client.search_model_versions(f"name = '{settings.model_name}'")
    if registered:
        echo(f"the registry already holds {len(registered)} version(s) of '{settings.model_name}': this story starts "
             "from an empty one. `make clean run` runs it again.")  # fmt: skip
        show_status(project, settings, client, echo)
        return []
    params_file = project / settings.params_file
    original = params_file.read_text()
    token = secrets.token_urlsafe(16)
    previous_token = os.environ.get("LEVEL3_ADMIN_TOKEN")
    os.environ["LEVEL3_ADMIN_TOKEN"] = token  # the flow reloads the service with it
    records = []
    try:
        step(echo, "1/5 the first candidate: dvc repro (train + register) -> certify -> staging smoke test -> champion")
        # while Prefect's server starts: the frozen holdout every candidate is certified on, and the live traffic
        frozen_holdout(load_params(params_file)["holdout"], project_settings(project).holdout_dir)
        trips = generate_month(LIVE_MONTH, rows=3000, seed=11)
        echo(prefect_ready(prefect))
        candidate = _train(project, {}, echo)
        records.append(cd_pipeline(str(project), version=candidate, via="make run"))
        if records[-1]["champion"] is None:
            raise DemoError(f"no champion after the first candidate: {records[-1]['reason']}")
        every = f"{settings.poll_interval:g} s"
        step(echo, f"2/5 start the service on 127.0.0.1:{port}: @champion, polling the registry every {every} "
                   "(an admin token for this run enables POST /admin/reload)")  # fmt: skip
        echo("(it starts in the background, log: build/serve.log; meanwhile the next candidate trains)")
        with in_background(service(port, token, project / "build" / "serve.log")) as starting:
            step(echo, "3/5 a better candidate (3 training months instead of 1): certify -> staging smoke test -> "
                       "canary -> champion, while live traffic flows")  # fmt: skip
            candidate = _train(project, BETTER, echo)
            url = starting.result()
            echo(f"serving v{_champion(url)} at {url} (log: build/serve.log)")
            echo(f"v{candidate} registered; now deploying it while live traffic flows (~{LIVE_RATE:g} requests/s)")
            with LoadGenerator(url, trips, threads=2, rate=LIVE_RATE) as load:
                records.append(cd_pipeline(str(project), version=candidate, service_url=url, via="make run"))
                time.sleep(1.0)  # traffic after the swap too
            stats = load.stats()
            echo(f"live traffic during the deployment: {stats.to_text()}")
            echo(f"=> {stats.failures} failed requests; the service now serves v{_champion(url)}")

            step(echo, "4/5 a bad candidate: trained on 2024-07/08, when vendor 2's feed reports kilometres")
            champion = _champion(url)
            candidate = _train(project, BROKEN_FEED, echo)
            with LoadGenerator(url, trips, threads=2, rate=LIVE_RATE) as load:
                records.append(cd_pipeline(str(project), version=candidate, service_url=url, via="make run"))
            stats = load.stats()
            record = records[-1]
            echo(f"=> v{record['version']} {record['decision']} at {record['stage']}: {record['reason'][:300]}")
            echo(f"=> production untouched: the service still serves v{_champion(url)} (was v{champion}); "
                 f"{stats.requests} requests meanwhile, {stats.failures} failed")  # fmt: skip
        echo(f"stopped the service on port {port}")
    finally:
        params_file.write_text(original)
        if previous_token is None:
            os.environ.pop("LEVEL3_ADMIN_TOKEN", None)
        else:
            os.environ["LEVEL3_ADMIN_TOKEN"] = previous_token
    echo("params.yaml restored (the flow changed it for each candidate, as a commit would)")
    show_status(project, settings, client, echo)
    return records
