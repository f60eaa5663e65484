"""How every command of the project reports a failure: one red line on stderr and exit code 1, no traceback.

Library functions raise named exceptions; the commands (``taxi-data``, ``levelN ...``) catch them and call
``fail``. ``settings_or_fail`` loads a level's settings the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn, TypeVar

import typer

from taxi.settings import SettingsError

T = TypeVar("T")


def fail(message: str) -> NoReturn:
    """Print ``message`` in red on stderr and exit 1."""
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def settings_or_fail(load: Callable[[], T]) -> T:
    """``load()``, or one line naming each bad setting and exit 1."""
    try:
        return load()
    except SettingsError as exc:
        fail(str(exc))
