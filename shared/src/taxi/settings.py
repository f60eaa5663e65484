"""Loading a level's pydantic-settings class so that a wrong value is one clear line, not a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

T = TypeVar("T", bound=BaseModel)


class SettingsError(ValueError):
    """An environment variable (or .env entry) with a value its setting does not accept."""


def load_settings(cls: type[T]) -> T:
    """``cls()`` read from the environment / .env; SettingsError naming each bad variable and its rule."""
    try:
        return cls()
    except ValidationError as exc:
        prefix = str(cls.model_config.get("env_prefix", ""))
        problems = "; ".join(f"{prefix}{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise SettingsError(f"invalid setting: {problems}") from None


def rooted_in(settings: T, project: Path, path_fields: tuple[str, ...]) -> T:
    """``settings`` with a relative sqlite ``tracking_uri`` and the relative ``path_fields`` taken in ``project``
    (absolute), so that a flow run from anywhere reads and writes the project's files."""
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_absolute():
        uri = f"sqlite:///{project / uri.removeprefix('sqlite:///')}"
    paths = {name: (project / getattr(settings, name)).resolve() for name in path_fields}
    return settings.model_copy(update={"tracking_uri": uri, **paths})
