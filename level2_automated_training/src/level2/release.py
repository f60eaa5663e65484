"""Manual, one-command release: point the serving alias at a registered version, or roll it back.

The release history is kept on the registered model (tag `production_history`, a JSON list of versions)
and on each version (tags `released_at`, `rolled_back_at`), so `rollback` knows where to return.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from taxi.tracking import RegistryError, alias_version, get_version

HISTORY_TAG = "production_history"


@dataclass
class Release:
    name: str
    alias: str
    old: ModelVersion | None
    new: ModelVersion

    def describe(self) -> str:
        def line(label: str, v: ModelVersion | None) -> str:
            if v is None:
                return f"  {label}: (none)"
            return f"  {label}: version {v.version}  RMSE {v.tags.get('rmse', '?')}  MAE {v.tags.get('mae', '?')}  " \
                   f"trained on {v.tags.get('train_months', '?')}"  # fmt: skip

        return f"{self.name}@{self.alias}\n{line('was', self.old)}\n{line('now', self.new)}"


def _history(client: MlflowClient, name: str) -> list[str]:
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        raise RegistryError(f"no registered model '{name}' yet: run the pipeline first (`make repro`)") from None
    return json.loads(model.tags.get(HISTORY_TAG, "[]"))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def release(client: MlflowClient, name: str, version: str | int, alias: str = "production") -> Release:
    """Point ``name@alias`` at ``version``. An unknown version raises RegistryError and changes nothing."""
    new = get_version(client, name, version)
    old = alias_version(client, name, alias)
    client.set_registered_model_alias(name, alias, new.version)
    client.set_model_version_tag(name, new.version, "released_at", _now())
    history = _history(client, name)
    if not history or history[-1] != str(new.version):
        history.append(str(new.version))
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
    return Release(name, alias, old, get_version(client, name, new.version))


def rollback(client: MlflowClient, name: str, alias: str = "production") -> Release:
    """Return ``name@alias`` to the version released before the current one."""
    history = _history(client, name)
    current = alias_version(client, name, alias)
    if current is None or len(history) < 2:
        raise RegistryError(f"nothing to roll back to: {name}@{alias} has no earlier release (history: {history})")
    if history[-1] != str(current.version):
        raise RegistryError(
            f"{name}@{alias} is version {current.version} but the last release recorded here is {history[-1]} "
            "(the alias was moved outside `make release`): release the version you want explicitly"
        )
    client.set_model_version_tag(name, current.version, "rolled_back_at", _now())
    history.pop()
    previous = get_version(client, name, history[-1])
    client.set_registered_model_alias(name, alias, previous.version)
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
    return Release(name, alias, current, previous)
