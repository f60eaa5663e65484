"""The level 3 service: the shared core serving ``@champion`` (and ``@challenger`` on a share of traffic),
swapping models while it serves.

What this level adds to level 2's service is the holder: instead of one model loaded at start-up, a
``taxi.registry_watch`` holder polls the registry aliases every ``LEVEL3_POLL_INTERVAL`` seconds (and on
``POST /admin/reload`` with ``LEVEL3_ADMIN_TOKEN``), loads and warms a new version off the request path and
swaps it in atomically. Every response says which version and variant answered; ``/metrics`` counts them.
``/model`` also shows, for each version served, its last deployment events (from ``LEVEL3_DEPLOY_LOG``).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

import uvicorn
from fastapi import FastAPI

from level3.deploy import DeploymentLog
from level3.settings import Settings
from taxi.hotswap import Deployment, ModelHolder
from taxi.registry_serving import holder_for as registry_holder_for
from taxi.registry_serving import limit_remote_retries
from taxi.serving import create_app as create_service


def holder_for(settings: Settings, champion_alias: str = "champion", challenger: bool = True) -> ModelHolder:
    """``taxi.registry_serving.holder_for`` with this level's settings: ``@champion_alias`` (and ``@challenger``
    unless ``challenger`` is False), loaded now."""
    return registry_holder_for(
        settings.tracking_uri,
        settings.model_name,
        challenger_share=settings.challenger_share,
        poll_interval=settings.poll_interval,
        champion_alias=champion_alias,
        challenger=challenger,
    )


def deployment_details(log: DeploymentLog, model: str, last: int = 10) -> Callable[[Deployment], dict[str, Any]]:
    """``/model``'s ``deployments``: for each version served (champion, challenger), its ``last`` events in the
    deployment log, oldest first; ``deployment_log`` says where they come from. The log is read at each call;
    a missing or unreadable log gives empty lists and a line that is not an event is skipped, never a 500."""

    def details(deployment: Deployment) -> dict[str, Any]:
        served = [m.version for m in (deployment.champion, deployment.challenger) if m is not None]
        events = [e for e in log.events(model) if e.version in served]
        return {
            "deployments": {v: [asdict(e) for e in events if e.version == v][-last:] for v in served},
            "deployment_log": {"path": str(log.path), "skipped_lines": log.skipped},
        }

    return details


def create_app(settings: Settings | None = None, holder: ModelHolder | None = None) -> FastAPI:
    """The service for ``settings`` (default: from the environment), on ``holder`` (default: ``holder_for``)."""
    settings = settings or Settings()
    limit_remote_retries(settings.tracking_uri)
    holder = holder or holder_for(settings)
    aliases = f"@champion (and @challenger on {holder.challenger_share:.0%} of traffic)"
    return create_service(
        holder,
        max_batch=settings.max_batch,
        title="Trip duration - level 3",
        description=f"Serves models:/{settings.model_name}{aliases}, swapping versions as the registry aliases "
        f"move (polled every {settings.poll_interval:g} s; POST /admin/reload polls now).",
        admin_token=settings.token,
        model_details=deployment_details(DeploymentLog(settings.deploy_log), settings.model_name),
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
