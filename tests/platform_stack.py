"""The team platform as processes on loopback, for the platform-mode test: what ``compose.yaml`` runs in containers,
started here from this environment's own programs (the same versions, from ``uv.lock``).

    pg = postgres.PostgresServer.create(bindir); pg.start()        # shared/tests/postgres.py
    mlflow = mlflow_server(folder, pg.new_database("mlflow"))        # backend on PostgreSQL, artifacts proxied
    prefect = prefect_server(folder, pg.new_database("prefect"))     # its database on PostgreSQL (asyncpg)
    worker = prefect_worker(folder, prefect.url, "platform", env)    # a process work pool's worker
    ...
    for process in (worker, prefect, mlflow): process.stop()        # by PID (each is its own process group)

Each server runs in a process group of its own (``start_new_session``), so stopping it (SIGTERM to that group: the
group the test created, never a name) also stops what it started (uvicorn workers, flow-run subprocesses). Its
output goes to a log file in ``folder``, quoted when it does not start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from taxi.smoke import free_port

BIN = Path(sys.executable).parent
QUIET = {  # no analytics, no telemetry, no progress bars: as the levels' Makefiles set
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


# what the caller's environment must not hand the platform's clients (`make test` runs from a Makefile that may
# export the platform's own settings; a developer may have a level's settings set): each test sets its own
FOREIGN = ("LEVEL0_", "LEVEL1_", "LEVEL2_", "LEVEL3_", "LEVEL4_", "LEVELS_ROOT", "PLATFORM_", "PREFECT_API_URL",
           "MLFLOW_TRACKING_URI")  # fmt: skip


class PlatformError(RuntimeError):
    """A platform server did not start; the message ends with its log."""


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    url: str
    log: Path

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to the server's own process group (its PID is the group's id), SIGKILL if it lingers."""
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait()
        _signal_group(self.process.pid, signal.SIGKILL)  # children the leader left behind, if any


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def start(name: str, command: list[str], env: Mapping[str, str], folder: Path, health: str, timeout: float) -> Server:
    """Run ``command`` in a new session, output to ``folder``/``name``.log, and wait until GET ``health`` answers
    200 (PlatformError with the log if it exits or never does)."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"{name}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            command, env=dict(env), cwd=folder, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(name, process, health.rsplit("/", 1)[0], log)
    try:
        wait_for(health, timeout, server)
    except BaseException:
        server.stop()
        raise
    return server


def wait_for(url: str, timeout: float, server: Server | None = None) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if server is not None and not server.running():
            raise PlatformError(f"{server.name} exited ({server.process.returncode}):\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last = str(exc)
        time.sleep(0.5)
    tail = f":\n{server.log_tail()}" if server is not None else ""
    raise PlatformError(f"{url} did not answer 200 within {timeout:.0f} s ({last}){tail}")


def tool(name: str) -> str:
    """A program of this environment (mlflow, prefect, level3, ...)."""
    return str(BIN / name)


def base_env(home: Path) -> dict[str, str]:
    """This environment's programs first on PATH, Prefect's home in ``home``, nothing sent anywhere."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN)}
    return {
        **inherited,
        **QUIET,
        "PATH": str(BIN) + os.pathsep + os.environ.get("PATH", ""),
        "PREFECT_HOME": str(home),
    }


def mlflow_server(folder: Path, backend_uri: str, artifacts: Path, timeout: float = 120.0) -> Server:
    """``mlflow server``: runs, metrics and the registry in ``backend_uri`` (PostgreSQL), artifacts proxied by the
    server (``--serve-artifacts``) into ``artifacts``: clients upload and download over HTTP only."""
    port = free_port()
    command = [
        str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", backend_uri, "--serve-artifacts", "--artifacts-destination", str(artifacts),
    ]  # fmt: skip
    # no server-side job runner (GenAI features: trace rollups, prompt optimisation): seven processes fewer
    env = {**base_env(folder / "mlflow-home"), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    return start("mlflow", command, env, folder, f"http://127.0.0.1:{port}/health", timeout)


def prefect_server(folder: Path, database_url: str, timeout: float = 180.0) -> Server:
    """``prefect server start`` on PostgreSQL (``PREFECT_API_DATABASE_CONNECTION_URL``, the asyncpg driver); its UI
    told where its API is (``PREFECT_UI_API_URL``: Prefect 3.9 otherwise points it at port 4200)."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **base_env(folder / "prefect-server-home"),
        "PREFECT_API_DATABASE_CONNECTION_URL": database_url,
        "PREFECT_API_URL": api,
        "PREFECT_UI_API_URL": api,
    }
    command = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    server = start("prefect-server", command, env, folder, f"{api}/health", timeout)
    server.url = api
    return server


def prefect_worker(folder: Path, api_url: str, pool: str, env: Mapping[str, str], timeout: float = 90.0) -> Server:
    """``prefect worker start --pool POOL --type process``: polls the pool every 2 s and runs each flow run as a
    subprocess with ``env`` (its health server on a loopback port). The pool is created if missing."""
    port = free_port()
    worker_env = {
        **env,
        "PREFECT_API_URL": api_url,
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_WORKER_WEBSERVER_HOST": "127.0.0.1",
        "PREFECT_WORKER_WEBSERVER_PORT": str(port),
    }
    command = [
        str(BIN / "prefect"), "worker", "start", "--pool", pool, "--type", "process", "--name", f"{pool}-worker",
        "--with-healthcheck", "--install-policy", "never",
    ]  # fmt: skip
    return start("prefect-worker", command, worker_env, folder, f"http://127.0.0.1:{port}/health", timeout)
