"""A service run as a separate process for as long as a block runs (extra: ``taxi-shared[serving]``).

    with service_process(["level4", "serve", "--port", "8004"], 8004, log_path=Path("build/serve.log")) as url:
        ...   # the service answers at url; stopped by its PID when the block ends

The demos of the levels with a long-running service use it: a busy port, a process that dies or a service that
never becomes healthy is a ``ServiceStartError`` naming the log to read. ``started_service`` starts one and goes
on at once (``wait_healthy()`` when it is needed): level 4's replay starts its service, which waits for a
champion, while it trains the first one.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taxi.smoke import SmokeTestFailed, port_in_use, stop_process, wait_until_healthy


class ServiceStartError(RuntimeError):
    """The service could not be started: the port is busy, or it did not become healthy (see its log)."""


@dataclass(frozen=True)
class StartedService:
    """A service process that was started, and may not answer yet (``started_service``)."""

    url: str
    process: subprocess.Popen
    log_path: Path

    def wait_healthy(self, timeout: float = 60.0) -> str:
        """Its URL once /health answers 200; ServiceStartError if it exits first or does not within ``timeout``."""
        try:
            wait_until_healthy(self.url, timeout=timeout, alive=lambda: self.process.poll() is None)
        except SmokeTestFailed as exc:
            raise ServiceStartError(f"the service did not start ({exc}); its log: {self.log_path}") from None
        return self.url


@contextmanager
def started_service(
    command: list[str],
    port: int,
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    host: str = "127.0.0.1",
    stop_timeout: float = 20.0,
    cwd: Path | None = None,
) -> Iterator[StartedService]:
    """Start ``command`` (a service listening on ``host:port``; in ``cwd``, default this process's) and go on
    while it starts: ``wait_healthy()`` when it is needed. Stopped by its PID when the block ends."""
    if port_in_use(port, host):
        raise ServiceStartError(f"port {port} is already in use: stop what runs there, or choose another (PORT=...)")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with (
        log_path.open("w") as log,
        subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd) as server,
    ):
        try:
            yield StartedService(f"http://{host}:{port}", server, log_path)
        finally:
            stop_process(server, timeout=stop_timeout)


@contextmanager
def service_process(command: list[str], port: int, *, log_path: Path, **options: Any) -> Iterator[str]:
    """``started_service`` (same arguments) until the block ends; yields the base URL once it answers /health."""
    with started_service(command, port, log_path=log_path, **options) as service:
        yield service.wait_healthy()
