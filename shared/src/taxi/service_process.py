"""A service run as a separate process for as long as a block runs (extra: ``taxi-shared[serving]``).

    with service_process(["level4", "serve", "--port", "8004"], 8004, log_path=Path("build/serve.log")) as url:
        ...   # the service answers at url; stopped by its PID when the block ends

The demos of the levels with a long-running service use it: a busy port, a process that dies or a service that
never becomes healthy is a ``ServiceStartError`` naming the log to read.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from taxi.smoke import SmokeTestFailed, port_in_use, stop_process, wait_until_healthy


class ServiceStartError(RuntimeError):
    """The service could not be started: the port is busy, or it did not become healthy (see its log)."""


@contextmanager
def service_process(
    command: list[str],
    port: int,
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    host: str = "127.0.0.1",
    stop_timeout: float = 20.0,
    cwd: Path | None = None,
) -> Iterator[str]:
    """Run ``command`` (a service listening on ``host:port``; in ``cwd``, default this process's) until the block
    ends; yields its base URL."""
    if port_in_use(port, host):
        raise ServiceStartError(f"port {port} is already in use: stop what runs there, or choose another (PORT=...)")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    url = f"http://{host}:{port}"
    with (
        log_path.open("w") as log,
        subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd) as server,
    ):
        try:
            wait_until_healthy(url, alive=lambda: server.poll() is None)
            yield url
        except SmokeTestFailed as exc:
            raise ServiceStartError(f"the service did not start ({exc}); its log: {log_path}") from None
        finally:
            stop_process(server, timeout=stop_timeout)
