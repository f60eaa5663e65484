"""`level4`: pipeline stages (run by DVC), the service with prediction logging, feedback, monitoring, the demo.

The library functions raise named errors; only these commands turn them into one red line and exit 1.

The stage commands (`level4 stage NAME`, run by dvc.yaml) are the shared ones (`taxi.pipeline`), as in levels
2 and 3, plus this level's `reference` (the champion's training trips, kept with its run for monitoring).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from level4.settings import load_settings
from taxi.console import fail, settings_or_fail
from taxi.pipeline import stage_cli

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
stages = stage_cli(load_settings)
app.add_typer(stages, name="stage")


@stages.command("reference")
def stage_reference(
    validated: Annotated[Path, typer.Option(exists=True, help="input (a dep in dvc.yaml)")],
    run: Annotated[Path, typer.Option(exists=True, help="the training run record (a dep in dvc.yaml)")],
    out: Annotated[Path, typer.Option(help="output (an out in dvc.yaml)")],
) -> None:
    """The training months' trips as the API accepts them -> OUT and the training run (monitoring reference)."""
    from level4.reference import write_reference
    from taxi.pipeline.common import StageError, load_params, months_of

    settings = settings_or_fail(load_settings)
    try:
        params = load_params(settings.params_file)
        ref = params.get("reference") or {}
        write_reference(
            validated, out, run, months_of(params["ingest"]), int(params["prepare"]["test_months"]),
            rows=int(ref.get("rows", 20000)), seed=int(ref.get("seed", 0)), tracking_uri=settings.tracking_uri,
        )  # fmt: skip
    except (StageError, OSError, KeyError) as exc:
        fail(f"reference: {exc}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="interface to bind (default LEVEL4_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default LEVEL4_PORT)")] = None,
) -> None:
    """Serve @champion (+ @challenger), hot-swapping, logging every prediction; POST /feedback takes the truth."""
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import ArgumentError

    from level4.service import create_app
    from taxi.serving import run_service

    settings = settings_or_fail(load_settings)
    raise typer.Exit(
        run_service(
            lambda: create_app(settings),
            host or settings.host,
            port or settings.port,
            (LookupError, MlflowException, ArgumentError, OSError),
        )
    )


FEEDBACK_FILE = "CSV, JSON lines or parquet: request_id, index, actual_duration_min or dropoff_datetime"


@app.command()
def feedback(file: Annotated[Path, typer.Argument(help=FEEDBACK_FILE)]) -> None:
    """Join the true durations in FILE to the logged predictions (by request id); report what was not used."""
    from sqlalchemy.exc import SQLAlchemyError

    from level4.feedback import read_feedback_file, record_feedback
    from level4.service import prediction_store

    settings = settings_or_fail(load_settings)
    if not file.is_file():
        fail(f"feedback: no such file: {file}")
    try:
        items, invalid = read_feedback_file(file)
        outcome = record_feedback(prediction_store(settings.prediction_store), items, all_or_nothing=False)
    except ValueError as exc:
        fail(f"feedback: {exc}")
    except SQLAlchemyError as exc:
        fail(f"feedback: the prediction store cannot be reached: {exc}")
    counts = outcome.counts() | {"invalid": len(invalid) + len(outcome.invalid)}
    typer.echo(f"{file}: {counts['accepted']} accepted, {counts['unknown']} unknown request ids, "
               f"{counts['duplicate']} duplicates, {counts['invalid']} invalid")  # fmt: skip
    for number, name, why in invalid[:5]:
        typer.echo(f"  row {number}: {name}: {why}")
    for position in outcome.unknown[:5]:
        typer.echo(f"  item {position}: no logged prediction has request id {items[position].request_id!r} "
                   f"and index {items[position].index}")  # fmt: skip


@app.command()
def monitor(
    month: Annotated[str | None, typer.Option(help="the window: trips picked up in this month (YYYY-MM)")] = None,
    start: Annotated[str | None, typer.Option(help="or: the window's first pickup time (ISO 8601)")] = None,
    end: Annotated[str | None, typer.Option(help="and/or its end (exclusive)")] = None,
) -> None:
    """Monitor a window of logged predictions (default: the latest month with predictions): Evidently reports."""
    from level4.flows import MonitoringError
    from level4.flows import monitor as monitor_flow

    settings_or_fail(load_settings)
    try:
        monitor_flow(project_dir=".", month=month, start=start, end=end)
    except MonitoringError as exc:
        fail(f"monitor: {exc}")


@app.command()
def demo(port: Annotated[int, typer.Option(help="the service's port on 127.0.0.1")] = 8004) -> None:
    """`make run`'s story: a champion, the service, a month of traffic, its feedback, the monitoring flow."""
    from level4.demo import DemoError, results_table, run_demo
    from level4.flows import MonitoringError
    from taxi.pipeline.tools import ToolError

    settings = settings_or_fail(load_settings)
    try:
        results = run_demo(Path.cwd(), settings, port, echo=typer.echo)
    except (DemoError, MonitoringError, ToolError) as exc:
        fail(f"demo: {exc}")
    typer.echo("\n" + results_table(results).to_string(index=False))


@app.command()
def init_git() -> None:
    """DVC versions data beside git: make this folder a git repository unless it is inside one already."""
    from taxi.pipeline.tools import ensure_git_repo

    if ensure_git_repo():
        typer.echo("initialised a git repository here (DVC needs one)")


if __name__ == "__main__":  # pragma: no cover
    app()
