"""The registry-backed model holder a hot-swapping service level starts with (extras: ``serving`` + ``tracking``).

    holder = holder_for(settings.tracking_uri, settings.model_name, challenger_share=0.2, poll_interval=2.0)
    app = taxi.serving.create_app(holder, ...)

``holder_for`` points MLflow at the tracking URI, builds a ``taxi.registry_watch.registry_holder`` serving
``@champion`` (and ``@challenger`` on a share of traffic) and loads it now, so that a missing alias or an
unreachable registry is a start-up error (``LookupError``, ``RegistryUnreachable``; a corrupt champion:
``ModelArtifactError``), not a service that answers 503. Against a remote tracking server a poll then fails in
seconds, not after MLflow's default retries. ``explain_start_failures`` turns those into one line that says
what to do, for a ``serve`` command to print.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import mlflow
from mlflow.exceptions import MlflowException

from taxi.hotswap import ModelHolder
from taxi.registry_watch import registry_holder
from taxi.tracking import ModelArtifactError, RegistryUnreachable

T = TypeVar("T")

# A remote registry that does not answer must fail a poll in seconds, not after MLflow's default retries
# (minutes): the service keeps serving what it has and says why in /model.
REMOTE_REGISTRY_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def limit_remote_retries(tracking_uri: str) -> None:
    """For an http(s) tracking server, MLflow's retries and timeout as ``REMOTE_REGISTRY_ENV`` (unless set)."""
    if tracking_uri.startswith(("http://", "https://")):
        for key, value in REMOTE_REGISTRY_ENV.items():
            os.environ.setdefault(key, value)


def quiet_artifact_downloads() -> None:
    """No progress bars of MLflow's artifact downloads (one per model loaded) in a service's log, unless
    ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR`` is set: a service is not a terminal, and its errors stay one line."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def holder_for(
    tracking_uri: str,
    model_name: str,
    *,
    challenger_share: float = 0.0,
    poll_interval: float | None = None,
    champion_alias: str = "champion",
    challenger: bool = True,
    wait_for_champion: bool = False,
) -> ModelHolder:
    """A holder serving ``model_name@champion_alias`` (and ``@challenger`` unless ``challenger`` is False), loaded
    now: no such alias (``LookupError``), an unreachable registry (``taxi.tracking.RegistryUnreachable``) or a
    refused model artifact (``taxi.tracking.ModelArtifactError``) raises. With ``wait_for_champion`` nothing is
    raised: the holder may start empty (the service answers 503 saying why) and its polls load the champion."""
    limit_remote_retries(tracking_uri)
    quiet_artifact_downloads()
    mlflow.set_tracking_uri(tracking_uri)
    holder = registry_holder(
        model_name,
        challenger_share=challenger_share if challenger else 0.0,
        poll_interval=poll_interval,
        champion_alias=champion_alias,
        challenger_alias="challenger" if challenger else None,
    )
    holder.poll(raise_on_error=not wait_for_champion)
    return holder


def settings_holder(settings: Any, *, champion_alias: str = "champion", challenger: bool = True) -> ModelHolder:
    """``holder_for`` with a service level's settings (``taxi.service_settings.HotSwapServiceFields``: registry,
    model name, challenger share, poll interval, whether to wait for a champion)."""
    return holder_for(
        settings.tracking_uri,
        settings.model_name,
        challenger_share=settings.challenger_share,
        poll_interval=settings.poll_interval,
        champion_alias=champion_alias,
        challenger=challenger,
        wait_for_champion=settings.wait_for_champion,
    )


class CannotStart(RuntimeError):
    """The service cannot start: one line naming what failed and what to do (a serve command prints it)."""


def explain_start_failures(create: Callable[[], T], env_prefix: str = "") -> Callable[[], T]:
    """``create`` (which builds a service on the registry), whose registry failures become ``CannotStart`` with
    what to do: an unreachable registry names the tracking URI and the setting (``{env_prefix}TRACKING_URI``); a
    refused model artifact says to point the alias at an intact version; any other MLflow error is cut to one
    line. A missing alias (``LookupError``) is left as it is: its message already says so."""

    def build() -> T:
        try:
            return create()
        except RegistryUnreachable as exc:
            raise CannotStart(
                f"{exc}: start the tracking server, or point {env_prefix}TRACKING_URI at one that answers"
            ) from None
        except ModelArtifactError as exc:
            raise CannotStart(
                f"{exc}; point the alias at a version whose model is intact (or register the model again)"
            ) from None
        except MlflowException as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            raise CannotStart(f"the MLflow registry failed: {first}") from None

    return build
