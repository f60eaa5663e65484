"""The registry-backed model holder a hot-swapping service level starts with (extras: ``serving`` + ``tracking``).

    holder = holder_for(settings.tracking_uri, settings.model_name, challenger_share=0.2, poll_interval=2.0)
    app = taxi.serving.create_app(holder, ...)

``holder_for`` points MLflow at the tracking URI, builds a ``taxi.registry_watch.registry_holder`` serving
``@champion`` (and ``@challenger`` on a share of traffic) and loads it now, so that a missing alias or an
unreachable registry is a start-up error (``LookupError`` / ``MlflowException``), not a service that answers
503. Against a remote tracking server a poll then fails in seconds, not after MLflow's default retries.
"""

from __future__ import annotations

import os
from typing import Any

import mlflow

from taxi.hotswap import ModelHolder
from taxi.registry_watch import registry_holder

# A remote registry that does not answer must fail a poll in seconds, not after MLflow's default retries
# (minutes): the service keeps serving what it has and says why in /model.
REMOTE_REGISTRY_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def limit_remote_retries(tracking_uri: str) -> None:
    """For an http(s) tracking server, MLflow's retries and timeout as ``REMOTE_REGISTRY_ENV`` (unless set)."""
    if tracking_uri.startswith(("http://", "https://")):
        for key, value in REMOTE_REGISTRY_ENV.items():
            os.environ.setdefault(key, value)


def holder_for(
    tracking_uri: str,
    model_name: str,
    *,
    challenger_share: float = 0.0,
    poll_interval: float | None = None,
    champion_alias: str = "champion",
    challenger: bool = True,
) -> ModelHolder:
    """A holder serving ``model_name@champion_alias`` (and ``@challenger`` unless ``challenger`` is False), loaded
    now: no such alias, or an unreachable registry, raises (LookupError / MlflowException)."""
    limit_remote_retries(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    holder = registry_holder(
        model_name,
        challenger_share=challenger_share if challenger else 0.0,
        poll_interval=poll_interval,
        champion_alias=champion_alias,
        challenger_alias="challenger" if challenger else None,
    )
    holder.poll(raise_on_error=True)
    return holder


def settings_holder(settings: Any, *, champion_alias: str = "champion", challenger: bool = True) -> ModelHolder:
    """``holder_for`` with a service level's settings (``taxi.service_settings.HotSwapServiceFields``: registry,
    model name, challenger share, poll interval)."""
    return holder_for(
        settings.tracking_uri,
        settings.model_name,
        challenger_share=settings.challenger_share,
        poll_interval=settings.poll_interval,
        champion_alias=champion_alias,
        challenger=challenger,
    )
