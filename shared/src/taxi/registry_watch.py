"""Hot swap from the MLflow Model Registry: the aliases say what to serve (extras: ``serving`` + ``tracking``).

    holder = registry_holder("trip-duration", challenger_share=0.1, poll_interval=5.0)
    holder.poll(raise_on_error=True)   # no champion yet, or the registry unreachable: an error at start-up
    app = taxi.serving.create_app(holder, admin_token=settings.admin_token)

A poll reads the registered model once (``MlflowClient.get_registered_model``: its alias -> version map),
so a registry that cannot be reached is a failed poll (the current models keep serving), never mistaken
for an alias that was removed (an outage must not look like "challenger removed"). Such a poll raises
``taxi.tracking.RegistryUnreachable`` naming the registry's URI and the cause ("connection refused", "timed
out"), which ``/model`` shows as the last error. A new version is loaded with ``taxi.tracking.RegistryModel``
(pyfunc, signature enforced, skops with trusted types only, the types read from the model file itself): a
corrupt or tampered artifact raises ``taxi.tracking.ModelArtifactError`` saying why, and the versions already
loaded keep serving.

The tracking URI is the caller's: set it (``mlflow.set_tracking_uri``) or pass a ``client``.
"""

from __future__ import annotations

from collections.abc import Callable

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from taxi.hotswap import ModelHolder
from taxi.routing import CHALLENGER, CHAMPION
from taxi.tracking import RegistryError, RegistryModel, get_version, is_not_found, registry_uri, unreachable

CHAMPION_ALIAS = "champion"
CHALLENGER_ALIAS = "challenger"


def alias_resolver(
    name: str,
    *,
    champion_alias: str = CHAMPION_ALIAS,
    challenger_alias: str | None = CHALLENGER_ALIAS,
    client: MlflowClient | None = None,
) -> Callable[[], dict[str, str | None]]:
    """``resolve()`` for ``ModelHolder``: ``{"champion": version, "challenger": version or None}`` from the
    aliases of registered model ``name`` (``challenger_alias=None``: never a challenger). Raises when the
    registry cannot be reached (``RegistryUnreachable``) or the model is not registered (``RegistryError``); a
    missing alias is None."""

    def resolve() -> dict[str, str | None]:
        registry = client or MlflowClient()
        try:
            aliases = registry.get_registered_model(name).aliases
        except MlflowException as exc:
            if is_not_found(exc):
                where = registry_uri(registry)
                raise RegistryError(f"no registered model '{name}' in the registry at {where}") from None
            raise unreachable(exc, registry) from None
        challenger = aliases.get(challenger_alias) if challenger_alias else None
        return {
            CHAMPION: _version_id(aliases.get(champion_alias)),
            CHALLENGER: _version_id(challenger),
        }

    return resolve


def registry_loader(name: str, *, client: MlflowClient | None = None) -> Callable[[str], RegistryModel]:
    """``load(version)`` for ``ModelHolder``: registered model ``name`` at that version, ready to predict."""

    def load(version: str) -> RegistryModel:
        return RegistryModel(name, get_version(client or MlflowClient(), name, version))

    return load


def registry_holder(
    name: str,
    *,
    challenger_share: float = 0.0,
    poll_interval: float | None = None,
    champion_alias: str = CHAMPION_ALIAS,
    challenger_alias: str | None = CHALLENGER_ALIAS,
    client: MlflowClient | None = None,
) -> ModelHolder:
    """A ``ModelHolder`` serving ``name@champion`` and, on ``challenger_share`` of traffic, ``name@challenger``.

    Nothing is loaded until the first ``poll`` (or the app's start-up)."""
    aliases = {CHAMPION: champion_alias}
    if challenger_alias:
        aliases[CHALLENGER] = challenger_alias
    return ModelHolder(
        alias_resolver(name, champion_alias=champion_alias, challenger_alias=challenger_alias, client=client),
        registry_loader(name, client=client),
        challenger_share=challenger_share,
        poll_interval=poll_interval,
        aliases=aliases,
    )


def _version_id(version: str | int | None) -> str | None:
    return None if version is None else str(version)
