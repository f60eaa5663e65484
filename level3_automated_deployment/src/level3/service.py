"""The level 3 service: the shared core serving ``@champion`` (and ``@challenger`` on a share of traffic),
swapping models while it serves.

What this level adds to level 2's service is the holder: instead of one model loaded at start-up, a
``taxi.registry_watch`` holder polls the registry aliases every ``LEVEL3_POLL_INTERVAL`` seconds (and on
``POST /admin/reload`` with ``LEVEL3_ADMIN_TOKEN``), loads and warms a new version off the request path and
swaps it in atomically. Every response says which version and variant answered; ``/metrics`` counts them.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import mlflow
import uvicorn
from fastapi import FastAPI

from level3.settings import Settings
from taxi.hotswap import ModelHolder
from taxi.registry_watch import registry_holder
from taxi.serving import create_app as create_service

# A remote registry that does not answer must fail a poll in seconds, not after MLflow's default retries
# (minutes): the service keeps serving what it has and says why in /model.
REMOTE_REGISTRY_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def holder_for(settings: Settings, champion_alias: str = "champion", challenger: bool = True) -> ModelHolder:
    """A holder serving ``@champion_alias`` (and ``@challenger`` unless ``challenger`` is False), loaded now:
    no such alias, or an unreachable registry, raises (LookupError / MlflowException)."""
    mlflow.set_tracking_uri(settings.tracking_uri)
    holder = registry_holder(
        settings.model_name,
        challenger_share=settings.challenger_share if challenger else 0.0,
        poll_interval=settings.poll_interval,
        champion_alias=champion_alias,
        challenger_alias="challenger" if challenger else None,
    )
    holder.poll(raise_on_error=True)
    return holder


def create_app(settings: Settings | None = None, holder: ModelHolder | None = None) -> FastAPI:
    """The service for ``settings`` (default: from the environment), on ``holder`` (default: ``holder_for``)."""
    settings = settings or Settings()
    if settings.tracking_uri.startswith(("http://", "https://")):
        for key, value in REMOTE_REGISTRY_ENV.items():
            os.environ.setdefault(key, value)
    holder = holder or holder_for(settings)
    aliases = f"@champion (and @challenger on {holder.challenger_share:.0%} of traffic)"
    return create_service(
        holder,
        max_batch=settings.max_batch,
        title="Trip duration - level 3",
        description=f"Serves models:/{settings.model_name}{aliases}, swapping versions as the registry aliases "
        f"move (polled every {settings.poll_interval:g} s; POST /admin/reload polls now).",
        admin_token=settings.token,
    )


@contextmanager
def running(app: FastAPI, host: str = "127.0.0.1", timeout: float = 60.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread of this process, on a free loopback port; yields its base URL.

    The CD flow's short-lived services (the staging smoke test, a canary when no service is running) use it:
    the same app over real HTTP, without starting another Python process."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"service-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the in-process service on {host}:{port} did not start")
            time.sleep(0.05)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
