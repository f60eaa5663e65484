"""Platform mode: levels 2-4 on the team platform, by their settings alone (issue #15).

The platform ``compose.yaml`` describes, run for real as processes (``tests/platform_stack.py``): a PostgreSQL
server (Debian's, started by the test: ``shared/tests/postgres.py``), an MLflow tracking server with its backend on
PostgreSQL and artifacts proxied (``--serve-artifacts``), a Prefect server on PostgreSQL (asyncpg), and a Prefect
worker polling a process work pool. Then, in order, each level pointed at it through its own environment variables
only (``LEVEL2_TRACKING_URI``, ``LEVEL3_MODEL_NAME``, ``LEVEL4_PREDICTION_STORE``, ``PREFECT_API_URL``, ...):

1. ``prefect deploy`` with the root ``prefect.yaml`` puts level 2's nightly training on the pool; a run of it executes
   on the worker (COMPLETED per the Prefect API, with the worker's process id) and the DVC pipeline registers a
   version on the MLflow server: run, params, metrics and the model visible through its REST API, every artifact in
   the server's artifact store, none in the project;
2. level 3's CD flow (``level3 cd --version 1``) certifies that version and promotes it: ``@champion`` on the server,
   the flow run recorded on the platform's Prefect server;
3. level 4's service serves that champion (downloaded through the server) and logs every prediction to PostgreSQL.

Without a PostgreSQL server here the module skips, naming what to install; with REQUIRE_POSTGRES=1 (CI) it fails.
About 3 minutes on 2 cores, most of it starting MLflow and Prefect on a new database and the DVC pipeline.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from taxi.api_payloads import trip_payloads
from taxi.generator import generate_month
from taxi.pipeline.scratch import scratch_project
from taxi.smoke import call_json, free_port

pytestmark = pytest.mark.platform

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(__import__("taxi").__file__).resolve().parents[2]
POOL = "platform"  # prefect.yaml's work pool
MODEL = "platform-trip-duration"  # one registered model the three levels share here: 2 registers, 3 promotes, 4 serves
# small data: this is about where things go, not about the model (level 3's quality gate still has to pass)
LEVEL2_PARAMS = {"ingest.rows": 3000, "ingest.months": 3, "train.max_iter": 60}
LEVEL3_PARAMS = {
    "holdout.rows": 3000,
    "certification.operational.latency_calls": 10,
    "certification.operational.latency_rounds": 1,
}


def _module(name: str, path: Path) -> ModuleType:
    """A helper module beside the tests (--import-mode=importlib puts no test folder on sys.path)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


pg = _module("taxi_tests_postgres", SHARED / "tests" / "postgres.py")
stack = _module("platform_stack", Path(__file__).with_name("platform_stack.py"))


def _missing(reason: str) -> None:
    if os.environ.get("REQUIRE_POSTGRES") == "1":
        pytest.fail(f"REQUIRE_POSTGRES=1 and {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass
class Platform:
    folder: Path
    postgres: object
    mlflow: stack.Server
    prefect: stack.Server
    worker: stack.Server | None
    artifacts: Path  # the MLflow server's artifact store (--artifacts-destination)
    predictions_url: str  # level 4's prediction store: a database on the PostgreSQL server

    def env(self, **settings: str) -> dict[str, str]:
        """A client's environment: this venv's programs, the platform's Prefect server, the given level settings."""
        return {**stack.base_env(self.folder / "client-home"), "PREFECT_API_URL": self.prefect.url, **settings}

    def mlflow_get(self, endpoint: str, **query: str) -> dict:
        status, body = call_json(f"{self.mlflow.url}/api/2.0/{endpoint}?{urllib.parse.urlencode(query)}", timeout=30)
        assert status == 200, f"GET {endpoint} {query}: HTTP {status} {body}"
        return body

    def prefect_api(self, path: str, body: dict | None = None) -> dict | list:
        status, answer = call_json(f"{self.prefect.url}/{path}", body, timeout=30)
        assert status in (200, 201), f"{path}: HTTP {status} {answer}"
        return answer


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[Platform]:
    """PostgreSQL + MLflow server + Prefect server + a process worker, up for this module; all stopped by PID."""
    bindir = pg.find_bindir()
    if bindir is None:
        _missing(f"no PostgreSQL server (initdb, postgres) found: {pg.INSTALL_HINT}")
    for driver, why in (("psycopg", "MLflow's backend and level 4's store"), ("asyncpg", "the Prefect server")):
        if importlib.util.find_spec(driver) is None:
            _missing(f"{driver} is not installed ({why}): uv sync --all-packages --extra postgres")
    folder = tmp_path_factory.mktemp("platform")
    server = pg.PostgresServer.create(bindir)
    started: list[stack.Server] = []
    try:
        server.start()
        mlflow_db, prefect_db = server.new_database("mlflow"), server.new_database("prefect")
        predictions = server.new_database("predictions")
        artifacts = folder / "mlflow-artifacts"
        # the two servers migrate their new databases at start (~30-40 s each on 2 cores): side by side
        with ThreadPoolExecutor(2) as pool:
            futures = [
                pool.submit(stack.mlflow_server, folder, mlflow_db, artifacts),
                pool.submit(stack.prefect_server, folder, prefect_db.replace("+psycopg", "+asyncpg")),
            ]
            errors = []
            for future in futures:
                try:
                    started.append(future.result())
                except Exception as exc:
                    errors.append(exc)
            if errors:
                raise errors[0]
        mlflow, prefect = started
        yield Platform(folder, server, mlflow, prefect, None, artifacts, predictions)
    finally:
        for process in reversed(started):
            process.stop()
        server.remove()


def _run(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (
        f"{' '.join(command)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout


def _local_tracking_state(folder: Path) -> list[Path]:
    """What a client writing MLflow state locally would leave: sqlite databases, mlruns/, mlartifacts/."""
    return [p for pattern in ("mlflow.db", "mlruns", "mlartifacts") for p in folder.rglob(pattern)]


def _wait_for_flow_run(platform: Platform, run_id: str, timeout: float = 420) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = platform.prefect_api(f"flow_runs/{run_id}")
        if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return run
        time.sleep(2)
    pytest.fail(
        f"flow run {run_id} not finished after {timeout:.0f} s: {run['state_type']}\n{platform.worker.log_tail()}"
    )


@pytest.fixture(scope="module")
def level2_on_the_worker(platform) -> Iterator[dict]:
    """Level 2's checkout (small data), ``prefect deploy`` from the root's prefect.yaml, a worker on the pool, and
    one run of ``scheduled-training/nightly`` on it; yields that flow run as the Prefect API returns it."""
    settings = {"LEVEL2_TRACKING_URI": platform.mlflow.url, "LEVEL2_MODEL_NAME": MODEL}
    env = platform.env(**settings)
    repo = platform.folder / "checkout"
    project = scratch_project(
        ROOT / "level2_automated_training", repo, LEVEL2_PARAMS, name="level2_automated_training", env=env
    )
    shutil.copy2(ROOT / "prefect.yaml", repo / "prefect.yaml")
    _run([stack.tool("prefect"), "work-pool", "create", POOL, "--type", "process"], repo, env)
    deployed = _run([stack.tool("prefect"), "--no-prompt", "deploy", "--name", "nightly"], repo, env)
    assert "scheduled-training/nightly" in deployed, deployed
    # the worker: where the checkout is (prefect.yaml's pull step) and the level's settings, nothing else
    platform.worker = stack.prefect_worker(
        platform.folder, platform.prefect.url, POOL, {**env, "LEVELS_ROOT": str(repo)}
    )
    try:
        started = _run(
            [
                stack.tool("prefect"),
                "deployment",
                "run",
                "scheduled-training/nightly",
                "--param",
                "push_to_remote=true",
            ],
            repo,
            env,
        )
        run_id = re.search(r"UUID: ([0-9a-f-]{36})", started).group(1)  # "└── UUID: <flow run id>"
        run = _wait_for_flow_run(platform, run_id)
        run["project"] = project
        yield run
    finally:
        platform.worker.stop()


def test_level2_training_runs_on_the_worker_and_registers_on_the_mlflow_server(platform, level2_on_the_worker):
    run = level2_on_the_worker
    assert run["state_type"] == "COMPLETED", f"{run['state']}\n{platform.worker.log_tail()}"
    # it ran on the worker of the pool: the worker's subprocess (its PID recorded), the worker's log names the run
    assert run["work_pool_name"] == POOL
    assert run["infrastructure_pid"], run
    assert run["id"] in platform.worker.log.read_text()

    # the pipeline registered version 1 on the server: the registry, the run and its lineage over the REST API
    model = platform.mlflow_get("mlflow/registered-models/get", name=MODEL)["registered_model"]
    versions = platform.mlflow_get("mlflow/model-versions/search", filter=f"name='{MODEL}'")["model_versions"]
    assert [v["version"] for v in versions] == ["1"], model
    version = versions[0]
    tags = {t["key"]: t["value"] for t in version.get("tags", [])}
    assert {"data_md5", "params_hash", "rmse"} <= tags.keys()
    mlflow_run = platform.mlflow_get("mlflow/runs/get", run_id=version["run_id"])["run"]
    params = {p["key"]: p["value"] for p in mlflow_run["data"]["params"]}
    metrics = {m["key"]: m["value"] for m in mlflow_run["data"]["metrics"]}
    assert params["train.max_iter"] == "60" and params["ingest.rows"] == "3000"
    assert 0 < metrics["rmse"] < 10
    # artifacts go through the server (mlflow-artifacts:/), into its store; the project has no MLflow state
    assert mlflow_run["info"]["artifact_uri"].startswith("mlflow-artifacts:/")
    listed = platform.mlflow_get("mlflow-artifacts/artifacts", path=_artifact_path(mlflow_run["info"]["artifact_uri"]))
    assert {"path": "evaluation", "is_dir": True} in listed["files"], listed
    evaluation = platform.mlflow_get(
        "mlflow-artifacts/artifacts", path=_artifact_path(mlflow_run["info"]["artifact_uri"]) + "/evaluation"
    )
    assert "residuals.png" in {f["path"] for f in evaluation["files"]}, evaluation
    assert list(platform.artifacts.rglob("MLmodel")), "the model's files are not in the server's artifact store"
    assert list(platform.artifacts.rglob("residuals.png"))
    assert _local_tracking_state(run["project"]) == []


def _artifact_path(uri: str) -> str:
    """``mlflow-artifacts:/1/abc/artifacts`` -> ``1/abc/artifacts`` (the proxy's path)."""
    return uri.removeprefix("mlflow-artifacts:").lstrip("/")


@pytest.fixture(scope="module")
def promoted(platform, level2_on_the_worker) -> dict:
    """Level 3's CD flow on version 1, from a level 3 checkout, with the platform in its settings."""
    env = platform.env(
        LEVEL3_TRACKING_URI=platform.mlflow.url, LEVEL3_MODEL_NAME=MODEL, LEVEL3_EXPERIMENT="platform-level3"
    )
    project = scratch_project(
        ROOT / "level3_automated_deployment", platform.folder / "level3", LEVEL3_PARAMS, name="level3", env=env
    )
    output = _run([stack.tool("level3"), "cd", "--version", "1"], project, env)
    record = json.loads(output[output.index("{") :])
    return {"record": record, "project": project}


def test_level3_cd_flow_promotes_on_the_server(platform, promoted):
    record = promoted["record"]
    assert record["decision"] == "promoted" and str(record["champion"]) == "1", record
    # the alias is on the server, with the certification the flow recorded as version tags
    model = platform.mlflow_get("mlflow/registered-models/get", name=MODEL)["registered_model"]
    aliases = {a["alias"]: a["version"] for a in model.get("aliases", [])}
    assert aliases == {"champion": "1"}, aliases
    version = platform.mlflow_get("mlflow/model-versions/get", name=MODEL, version="1")["model_version"]
    assert {t["key"]: t["value"] for t in version["tags"]}["certified"] == "true"
    # the flow ran against the platform's Prefect server (no temporary one): its run is recorded there
    runs = platform.prefect_api("flow_runs/filter", {"flows": {"name": {"any_": ["cd-pipeline"]}}})
    assert [r["state_type"] for r in runs] == ["COMPLETED"], runs
    assert _local_tracking_state(promoted["project"]) == []


def _logged_predictions(url: str, expected: int, timeout: float = 30.0) -> tuple[int, set[str]]:
    """(trips in the prediction store, the model versions that answered them), read the way level 4's monitoring
    reads them, once ``expected`` are there (the service writes off the request path, in batches; its tables appear
    with its first write)."""
    from sqlalchemy.exc import ProgrammingError

    from level4.prediction_log import PredictionStore, read_predictions

    store = PredictionStore(url)
    assert store.engine.dialect.name == "postgresql"
    deadline, found = time.monotonic() + timeout, (0, set())
    try:
        while time.monotonic() < deadline and found[0] < expected:
            with store.engine.connect() as connection, contextlib.suppress(ProgrammingError):
                frame = read_predictions(connection)
                found = (len(frame), set(frame["model_version"]))
            time.sleep(0.5)
    finally:
        store.dispose()
    return found


def test_platform_status_names_every_part(platform, level2_on_the_worker):
    """`make platform-status`'s check (platform/status.py) on this platform: every part ok, the worker online."""
    command = [sys.executable, str(ROOT / "platform" / "status.py"), "--mlflow", platform.mlflow.url]
    command += ["--prefect", platform.prefect.url, "--postgres", platform.postgres.url("mlflow_0"), "--pool", POOL]
    output = _run(command, ROOT, platform.env())
    lines = {line.split()[0] + (" pool" if line.startswith("work pool") else ""): line for line in output.splitlines()}
    assert {"postgres", "mlflow", "prefect", "work pool"} <= lines.keys(), output
    assert all(" ok " in line for line in lines.values()), output
    assert "1 registered model" in lines["mlflow"] and "platform-worker" in lines["work pool"], output
    # and a part that is not there is named, with exit 1
    dead = subprocess.run(
        [sys.executable, str(ROOT / "platform" / "status.py"), "--mlflow", f"http://127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dead.returncode == 1 and "DOWN" in dead.stdout and "not up: mlflow" in dead.stderr, dead


def test_level4_serves_the_champion_and_logs_predictions_to_postgres(platform, promoted, tmp_path):
    port = free_port()
    env = platform.env(
        LEVEL4_TRACKING_URI=platform.mlflow.url,
        LEVEL4_MODEL_NAME=MODEL,
        LEVEL4_PREDICTION_STORE=platform.predictions_url,
    )
    body = trip_payloads(generate_month("2024-02", rows=60, seed=3))[0][:25]
    service = stack.start(
        "level4-service",
        [stack.tool("level4"), "serve", "--port", str(port)],
        env,
        tmp_path,
        f"http://127.0.0.1:{port}/health",
        timeout=180,
    )
    try:
        status, health = call_json(f"http://127.0.0.1:{port}/health")
        assert health["model_version"] == "1", health
        status, answer = call_json(f"http://127.0.0.1:{port}/predict", body, timeout=30)
        assert status == 200 and len(answer["predictions"]) == len(body), answer
        logged = _logged_predictions(platform.predictions_url, len(body))
        assert logged == (len(body), {"1"}), f"{logged}\n{service.log_tail()}"
    finally:
        service.stop()
    # no SQLite store or MLflow state beside the service: the store is PostgreSQL, the model came over HTTP
    assert not list(tmp_path.rglob("*.db")) and _local_tracking_state(tmp_path) == []
