"""The ``serve`` command of a level with a hot-swapping service (levels 3 and 4).

@app.command()
def serve(host: str | None = None, port: int | None = None) -> None:
    serve_command(load_settings, create_app, host, port, cannot_start=(ArgumentError, OSError))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn, TypeVar

import typer

from taxi.console import settings_or_fail
from taxi.service_settings import HotSwapServiceFields

if TYPE_CHECKING:
    from fastapi import FastAPI

S = TypeVar("S", bound=HotSwapServiceFields)


def serve_command(
    load_settings: Callable[[], S],
    create_app: Callable[[S], FastAPI],
    host: str | None = None,
    port: int | None = None,
    *,
    cannot_start: tuple[type[Exception], ...] = (),
) -> NoReturn:
    """Load the level's settings (a wrong one: one red line, exit 1), say when ``POST /admin/reload`` is off,
    then serve ``create_app(settings)`` with uvicorn on ``host``/``port`` (default: the settings') until
    stopped. No ``@champion`` (``LookupError``), an unreachable registry, a champion whose model artifact is
    refused (``taxi.registry_serving.explain_start_failures``) or one of ``cannot_start`` while the app is built:
    one line saying what to do, exit 1, no traceback."""
    from taxi.registry_serving import CannotStart, explain_start_failures  # here: `levelN --help` skips MLflow
    from taxi.serving import run_service

    settings = settings_or_fail(load_settings)
    prefix = str(settings.model_config.get("env_prefix", "")).upper()
    if not settings.token:
        typer.echo(f"no {prefix}ADMIN_TOKEN: POST /admin/reload is disabled; new versions arrive by polling")
    raise typer.Exit(
        run_service(
            explain_start_failures(lambda: create_app(settings), prefix),
            host or settings.host,
            port or settings.port,
            (LookupError, CannotStart, *cannot_start),
        )
    )
