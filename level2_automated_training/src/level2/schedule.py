"""Scheduled training: serve the training flow as a Prefect deployment on a cron schedule.

Schedules need a Prefect server. With PREFECT_API_URL set, the flow is served to that server; without it,
`level2 schedule` starts a local one on a loopback port for as long as it runs (the shared
`taxi.pipeline.prefect_server.local_prefect_server`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from taxi.pipeline.prefect_server import PrefectServerError, serve

__all__ = ["PrefectServerError", "serve_training"]


def serve_training(cron: str, project_dir: Path, port: int, home: Path, echo: Callable[[str], None] = print) -> None:
    """Serve the training flow on ``cron`` until Ctrl-C; starts a local server when PREFECT_API_URL is unset.
    The runner stops first, then the server."""

    def deployments() -> list:
        from level2.flows import training_pipeline

        parameters = {"project_dir": str(project_dir)}
        return [training_pipeline.to_deployment(name="nightly", cron=cron, parameters=parameters)]

    def started(api_url: str) -> None:
        from prefect.settings import PREFECT_UI_URL

        echo(f"serving deployment 'scheduled-training/nightly' (cron '{cron}'); Ctrl-C to stop")
        echo("  run it now from another terminal: prefect deployment run 'scheduled-training/nightly'")
        if PREFECT_UI_URL.value():
            echo(f"  or from the UI: {PREFECT_UI_URL.value()}/deployments")

    serve(deployments, "nightly", port, home, echo, started)
