"""Scheduled training: serve the training flow as a Prefect deployment on a cron schedule.

Schedules need a Prefect server. With PREFECT_API_URL set, the flow is served to that server; without it,
`level2 schedule` starts a local one on a loopback port for as long as it runs (`local_prefect_server`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from taxi.pipeline import tools
from taxi.smoke import SmokeTestFailed, port_in_use, stop_process, wait_until_healthy


class PrefectServerError(RuntimeError):
    """The local Prefect server could not start (busy port, or it exited / never answered)."""


def prefect_server_env(port: int, home: Path) -> dict[str, str]:
    """The server's environment: its state in ``home``, no analytics, and its UI told where the API is
    (Prefect 3.9 otherwise tells the UI to call port 4200 whatever port the server runs on)."""
    api_url = f"http://127.0.0.1:{port}/api"
    return {
        **tools.tool_env(),
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_API_URL": api_url,
        "PREFECT_UI_API_URL": api_url,
    }


@contextmanager
def local_prefect_server(port: int, home: Path, timeout: float = 90.0) -> Iterator[str]:
    """Run `prefect server start` on 127.0.0.1:``port`` while the block runs; yields its API URL.

    The server runs in its own session, so a Ctrl-C in the terminal reaches only this process: the caller
    stops what uses the server first (the runner), then the server is stopped here, by its PID.
    Its output goes to ``home``/server.log.
    """
    if port_in_use(port):
        raise PrefectServerError(f"port {port} is already in use: stop what runs there, or choose another")
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "server.log"
    command = [tools.tool("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=prefect_server_env(port, home), start_new_session=True
        )
    api_url = f"http://127.0.0.1:{port}/api"
    try:
        try:
            wait_until_healthy(api_url, timeout=timeout, alive=lambda: process.poll() is None)
        except SmokeTestFailed as exc:
            raise PrefectServerError(f"the local Prefect server did not start ({exc}): see {log_path}") from None
        yield api_url
    finally:
        stop_process(process, timeout=20)


def serve_until_interrupted(cron: str, project_dir: Path, echo: Callable[[str], None] = print) -> None:
    """Serve the training flow on ``cron`` with a Prefect runner until Ctrl-C, which stops it gracefully.

    Ctrl-C may arrive twice, the second one late (`uv run` forwards the terminal's SIGINT to its child
    too): the first asks the runner to stop (it pauses its schedule and cancels its loops); later ones
    change nothing, here or in the caller's shutdown (the caller restores the SIGINT handler).
    """
    from prefect.runner import Runner
    from prefect.settings import PREFECT_UI_URL

    from level2.flows import training_pipeline

    runner = Runner(name="nightly")
    deployment = runner.add_flow(
        training_pipeline, name="nightly", cron=cron, parameters={"project_dir": str(project_dir)}
    )
    echo(f"serving deployment 'scheduled-training/nightly' (cron '{cron}'); Ctrl-C to stop")
    echo("  run it now from another terminal: prefect deployment run 'scheduled-training/nightly'")
    if PREFECT_UI_URL.value():
        echo(f"  or from the UI: {PREFECT_UI_URL.value()}/deployments/deployment/{deployment}")

    interrupted = False

    def stop(*_: object) -> None:
        nonlocal interrupted
        if interrupted:
            return
        if not runner.started:  # not serving yet: nothing to stop gracefully
            raise KeyboardInterrupt
        interrupted = True
        echo("stopping the runner (Ctrl-C)")
        runner.execute_in_background(runner.astop)

    signal.signal(signal.SIGINT, stop)
    asyncio.run(runner.start())


def serve_training(cron: str, project_dir: Path, port: int, home: Path, echo: Callable[[str], None] = print) -> None:
    """Serve the training flow on ``cron`` until Ctrl-C; starts a local server when PREFECT_API_URL is unset.
    The runner stops first, then the server."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    previous = signal.getsignal(signal.SIGINT)
    try:
        if os.environ.get("PREFECT_API_URL"):
            echo(f"Prefect server: {os.environ['PREFECT_API_URL']} (PREFECT_API_URL)")
            serve_until_interrupted(cron, project_dir, echo)
            return
        with local_prefect_server(port, home) as api_url:
            echo(f"local Prefect server on http://127.0.0.1:{port} (UI there; log in {home / 'server.log'})")
            with temporary_settings({PREFECT_API_URL: api_url}):
                serve_until_interrupted(cron, project_dir, echo)
        echo("stopped the local Prefect server")
    finally:
        signal.signal(signal.SIGINT, previous)
