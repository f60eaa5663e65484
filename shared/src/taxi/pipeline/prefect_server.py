"""Deployments served by a Prefect runner on a long-lived Prefect server: schedules (level 2) and event-driven
automations (level 4) need one; Prefect's temporary server runs single flow runs only.

    serve(lambda: [flow.to_deployment(name="nightly", cron="0 3 * * *")], "nightly", port=4302, home=Path(".prefect"))

``serve`` uses the server at PREFECT_API_URL when it is set (one that does not answer is a PrefectServerError
naming it, before anything is served), else starts one on a loopback port for as long as it serves
(``local_prefect_server``), and serves until Ctrl-C: the runner stops first, then the server.

A demo that runs flows in its own process (level 3's story, level 4's replay) starts the server first thing, in
the background, and waits for it only before its first flow, so the server's start-up (imports, its database
migrations: 15-25 s on 2 cores) overlaps the demo's own (``background_prefect_server``):

    with background_prefect_server(Path(".prefect")) as prefect:   # returns at once; PREFECT_API_URL set
        ...                                                          # imports, data, anything without Prefect
        prefect.wait()                                               # blocks until the server answers
        my_flow()

Flows a command runs in its own process run ``without_heartbeats()``: each flow run then ends when its work
does, not up to a second later.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from taxi.pipeline import tools
from taxi.smoke import SmokeTestFailed, free_port, port_in_use, stop_process, wait_until_healthy


class PrefectServerError(RuntimeError):
    """The local Prefect server could not start (busy port, or it exited / never answered), or the one at
    PREFECT_API_URL does not answer."""


def check_prefect_server(api_url: str, timeout: float = 5.0) -> None:
    """PrefectServerError naming ``api_url`` (PREFECT_API_URL) when nothing answers its /health."""
    from taxi.pipeline.common import unreachable

    reason = unreachable(api_url.rstrip("/") + "/health", timeout=timeout)
    if reason:
        raise PrefectServerError(
            f"the Prefect server at {api_url} (PREFECT_API_URL) is not reachable ({reason}): start it, or unset"
            " PREFECT_API_URL to have a local one started for as long as this runs"
        )


def prefect_server_env(port: int, home: Path, register_blocks: bool = True) -> dict[str, str]:
    """The server's environment: its state in ``home``, no analytics, and its UI told where the API is
    (Prefect 3.9 otherwise tells the UI to call port 4200 whatever port the server runs on). Without
    ``register_blocks`` it does not write Prefect's catalogue of block types into a new database at start-up
    (seconds on 2 cores): a server for one run, whose flows use no blocks."""
    api_url = f"http://127.0.0.1:{port}/api"
    return {
        **tools.tool_env(),
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_API_URL": api_url,
        "PREFECT_UI_API_URL": api_url,
        "PREFECT_API_BLOCKS_REGISTER_ON_START": str(register_blocks).lower(),
    }


DATABASE = "prefect.db"  # what Prefect's server keeps in PREFECT_HOME (its default sqlite database)


def database_template() -> Path:
    """Where this environment keeps an empty Prefect database, migrated to the installed Prefect's schema (in the
    virtual environment, beside the Prefect it was made for: `make clean` keeps it, a new Prefect version makes a
    new one)."""
    from importlib.metadata import version

    return Path(sys.prefix) / "var" / "taxi" / f"prefect-{version('prefect')}.db"


def make_database_template() -> Path:
    """Make ``database_template()`` unless it is there (`make setup` does): Prefect's own `prefect server database
    upgrade` on a database in a temporary PREFECT_HOME, copied when complete. A server started on a new home
    begins from a copy of it (``StartingPrefectServer``) instead of running every migration itself: ~8 s of a
    20 s start on 2 cores, on the path of every `make level3` / `make level4` (they start from `make clean`)."""
    import sqlite3
    import tempfile
    from contextlib import closing

    template = database_template()
    if template.exists():
        return template
    with tempfile.TemporaryDirectory(prefix="prefect-template-") as tmp:
        home = Path(tmp)
        env = {**tools.tool_env(), "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{home / DATABASE}"
        upgrade = [tools.tool("prefect"), "server", "database", "upgrade", "-y"]
        done = subprocess.run(upgrade, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise PrefectServerError(f"prefect server database upgrade failed: {(done.stdout + done.stderr)[-500:]}")
        template.parent.mkdir(parents=True, exist_ok=True)
        partial = template.with_name(template.name + ".partial")
        with closing(sqlite3.connect(home / DATABASE)) as source, closing(sqlite3.connect(partial)) as copy:
            source.backup(copy)  # one consistent file, whatever the write-ahead log still held
        os.replace(partial, template)
    return template


def seed_database(home: Path) -> bool:
    """Start ``home``'s Prefect database as a copy of the migrated template when it has none and the template
    exists; whether it did (without the template, the server migrates a new database itself, as usual)."""
    target, template = home / DATABASE, database_template()
    if target.exists() or not template.exists():
        return False
    shutil.copyfile(template, target)
    return True


class StartingPrefectServer:
    """`prefect server start` on 127.0.0.1:``port``, launched at construction and not waited for: ``wait()`` blocks
    until it answers (PrefectServerError if it exits or does not answer in ``timeout`` s), ``stop()`` stops it by
    its PID. It runs in its own session, so a Ctrl-C in the terminal reaches only this process; its output goes
    to ``home``/server.log."""

    def __init__(self, port: int, home: Path, timeout: float = 90.0, register_blocks: bool = True):
        if port_in_use(port):
            raise PrefectServerError(f"port {port} is already in use: stop what runs there, or choose another")
        home.mkdir(parents=True, exist_ok=True)
        self.seeded = seed_database(home)  # a new home starts from the migrated template (make setup made it)
        self.port, self.timeout, self.log_path = port, timeout, home / "server.log"
        self.api_url = f"http://127.0.0.1:{port}/api"
        self.ui_url = f"http://127.0.0.1:{port}"
        command = [tools.tool("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
        self.started = time.monotonic()
        self.waited: float | None = None  # seconds from the launch until it answered, once it has
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=prefect_server_env(port, home, register_blocks),
                start_new_session=True,
            )  # fmt: skip

    def wait(self) -> str:
        """Block until the server answers (at once if it did before); its API URL."""
        if self.waited is None:
            remaining = max(self.timeout - (time.monotonic() - self.started), 1.0)
            try:
                wait_until_healthy(self.api_url, timeout=remaining, alive=lambda: self.process.poll() is None)
            except SmokeTestFailed as exc:
                raise PrefectServerError(
                    f"the local Prefect server did not start ({exc}): see {self.log_path}"
                ) from None
            self.waited = time.monotonic() - self.started
        return self.api_url

    def stop(self) -> None:
        stop_process(self.process, timeout=20)


@contextmanager
def local_prefect_server(port: int, home: Path, timeout: float = 90.0) -> Iterator[str]:
    """Run `prefect server start` on 127.0.0.1:``port`` while the block runs; yields its API URL once it answers.

    The server runs in its own session, so a Ctrl-C in the terminal reaches only this process: the caller
    stops what uses the server first (the runner), then the server is stopped here, by its PID.
    Its output goes to ``home``/server.log.
    """
    server = StartingPrefectServer(port, home, timeout)
    try:
        yield server.wait()
    finally:
        server.stop()


@contextmanager
def background_prefect_server(home: Path, timeout: float = 90.0) -> Iterator[StartingPrefectServer | None]:
    """The Prefect server this process's flows use, started now in the background (see module doc).

    With PREFECT_API_URL set, that server is used and None is yielded (nothing to start or wait for). Otherwise a
    local server is launched on a free loopback port and PREFECT_API_URL points at it for the block (set before
    Prefect is imported, it is what Prefect reads; if Prefect is imported already, its settings are changed too);
    the caller calls ``wait()`` before its first flow. When the block ends, the logs and events this process's
    flows still hold are sent, then the server is stopped and PREFECT_API_URL restored.
    """
    if os.environ.get("PREFECT_API_URL"):
        yield None
        return
    server = StartingPrefectServer(free_port(), home, timeout, register_blocks=False)  # stopped when the run ends
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        with ExitStack() as stack:
            if "prefect" in sys.modules:
                from prefect.settings import PREFECT_API_URL, temporary_settings

                stack.enter_context(temporary_settings({PREFECT_API_URL: server.api_url}))
            try:
                yield server
            finally:
                _send_pending_logs_and_events()
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()


def _send_pending_logs_and_events(timeout: float = 10.0) -> None:
    """Send what Prefect's background workers still hold for the server (flow run logs, events) while it runs:
    left to the interpreter's exit, they would be sent to a server that is gone, and retried."""
    if "prefect" not in sys.modules:
        return
    try:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=timeout, at_exit=False)
        EventsWorker.drain_all(timeout=timeout, at_exit=False)
    except Exception:  # never let the demo fail over log delivery at its very end
        pass


@contextmanager
def without_heartbeats() -> Iterator[None]:
    """Flow runs started in this block, in this process, send no heartbeats.

    Prefect 3.9 gives every flow run a heartbeat thread (an event every 180 s: a server automation can mark a run
    whose process died as crashed) and joins it when the run ends; the thread sleeps in one-second steps, so every
    flow run ends up to a second after its work, a subflow too (Prefect's own test suite turns them off for that).
    A command that runs flows in its own process (`level3 cd`, the demo, `level4 watch`, the replay) is there to
    see them end: it needs no heartbeat. Flows a worker or a runner starts (platform mode, `make orchestrate`) run
    in processes of their own, and keep Prefect's default. The environment cannot say "none"
    (PREFECT_FLOWS_HEARTBEAT_FREQUENCY takes a number of at least 30), Prefect's settings context can."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def serve_until_interrupted(
    name: str, deployments: Callable[[], list[Any]], echo: Callable[[str], None] = print
) -> list[Any]:
    """Serve ``deployments()`` (``flow.to_deployment(...)`` objects) with a Prefect runner until Ctrl-C, which
    stops it gracefully; returns the deployments' ids.

    Ctrl-C may arrive twice, the second one late (`uv run` forwards the terminal's SIGINT to its child
    too): the first asks the runner to stop (it pauses its schedules and cancels its loops); later ones
    change nothing, here or in the caller's shutdown (the caller restores the SIGINT handler).
    """
    from prefect.runner import Runner

    runner = Runner(name=name)
    ids = [runner.add_deployment(deployment) for deployment in deployments()]
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
    return ids


def serve(
    deployments: Callable[[], list[Any]],
    name: str,
    port: int,
    home: Path,
    echo: Callable[[str], None] = print,
    started: Callable[[str], None] = lambda api_url: None,
) -> None:
    """Serve ``deployments()`` until Ctrl-C on the server at PREFECT_API_URL, or on a local one started here
    (see module doc); ``started(api_url)`` is called once the server answers, before serving."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    previous = signal.getsignal(signal.SIGINT)
    try:
        if os.environ.get("PREFECT_API_URL"):
            check_prefect_server(os.environ["PREFECT_API_URL"])
            echo(f"Prefect server: {os.environ['PREFECT_API_URL']} (PREFECT_API_URL)")
            started(os.environ["PREFECT_API_URL"])
            serve_until_interrupted(name, deployments, echo)
            return
        with local_prefect_server(port, home) as api_url:
            echo(f"local Prefect server on http://127.0.0.1:{port} (UI there; log in {home / 'server.log'})")
            with temporary_settings({PREFECT_API_URL: api_url}):
                started(api_url)
                serve_until_interrupted(name, deployments, echo)
        echo("stopped the local Prefect server")
    finally:
        signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":  # `make setup`: python -m taxi.pipeline.prefect_server
    started = time.monotonic()
    existed = database_template().exists()
    made = make_database_template()
    how = "there already" if existed else f"made in {time.monotonic() - started:.0f} s"
    print(f"Prefect database template: {made} ({how})")
