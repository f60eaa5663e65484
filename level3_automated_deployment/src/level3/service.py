"""The level 3 service: the shared core serving ``@champion`` (and ``@challenger`` on a share of traffic),
swapping models while it serves.

What this level adds to level 2's service is the holder: instead of one model loaded at start-up, a
``taxi.registry_watch`` holder polls the registry aliases every ``LEVEL3_POLL_INTERVAL`` seconds (and on
``POST /admin/reload`` with ``LEVEL3_ADMIN_TOKEN``), loads and warms a new version off the request path and
swaps it in atomically. Every response says which version and variant answered; ``/metrics`` counts them.
``/model`` also shows, for each version served, its last deployment events (from ``LEVEL3_DEPLOY_LOG``).

The CD flow (``taxi.deployment.cd``) builds this same app for its staging smoke test (serving ``@staging``) and,
when no service is running, for the canary.
"""

from __future__ import annotations

from fastapi import FastAPI

# before the modules that import MLflow: taxi.tracking imports skops first (after MLflow, seconds slower)
import taxi.tracking  # noqa: F401  # isort: split
from level3.settings import Settings
from taxi.deployment.deployer import DeploymentLog, deployment_details
from taxi.hotswap import ModelHolder
from taxi.registry_serving import limit_remote_retries, settings_holder
from taxi.serving import create_app as create_service


def create_app(settings: Settings | None = None, holder: ModelHolder | None = None) -> FastAPI:
    """The service for ``settings`` (default: from the environment), on ``holder`` (default: the registry's
    ``@champion`` and ``@challenger``, loaded now: ``taxi.registry_serving.settings_holder``)."""
    settings = settings or Settings()
    limit_remote_retries(settings.tracking_uri)
    holder = holder or settings_holder(settings)
    aliases = f"@champion (and @challenger on {holder.challenger_share:.0%} of traffic)"
    return create_service(
        holder,
        max_batch=settings.max_batch,
        max_body_bytes=settings.max_body_bytes,
        body_timeout=settings.body_timeout,
        title="Trip duration - level 3",
        description=f"Serves models:/{settings.model_name}{aliases}, swapping versions as the registry aliases "
        f"move (polled every {settings.poll_interval:g} s; POST /admin/reload polls now).",
        admin_token=settings.token,
        model_details=deployment_details(DeploymentLog(settings.deploy_log), settings.model_name),
    )
