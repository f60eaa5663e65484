"""`level4`: pipeline stages (run by DVC), the service with prediction logging, feedback, monitoring, the
policy and retraining (`watch`), the year replay.

The library functions raise named errors; only these commands turn them into one red line and exit 1.

The stage commands (`level4 stage NAME`, run by dvc.yaml) are the shared ones (`taxi.pipeline`), as in levels
2 and 3, plus this level's `reference` (the champion's training trips, kept with its run for monitoring).
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Annotated

import typer

from level4.settings import load_settings
from taxi.console import fail, settings_or_fail
from taxi.pipeline import add_init_git, stage_cli

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
    from taxi.pipeline.common import StageError, load_params
    from taxi.pipeline.prepare import Split

    settings = settings_or_fail(load_settings)
    try:
        params = load_params(settings.params_file)
        ref = params.get("reference") or {}
        write_reference(
            validated, out, run, Split.of(params),
            rows=int(ref.get("rows", 20000)), seed=int(ref.get("seed", 0)), tracking_uri=settings.tracking_uri,
        )  # fmt: skip
    except (StageError, OSError, KeyError) as exc:
        fail(f"reference: {exc}")
    gc.freeze()  # the stage's process ends now (see taxi.pipeline.cli: the collector's last pass took seconds)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="interface to bind (default LEVEL4_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default LEVEL4_PORT)")] = None,
) -> None:
    """Serve @champion (+ @challenger), hot-swapping, logging every prediction; POST /feedback takes the truth."""
    from sqlalchemy.exc import ArgumentError

    import taxi.tracking  # noqa: F401  (first: it imports skops before MLflow, seconds faster than after)
    from level4.service import create_app
    from taxi.deployment.serve import serve_command

    settings = settings_or_fail(load_settings)
    interface = host or settings.host
    if settings.prediction_log and not _is_loopback(interface) and not settings.feedback_token.get_secret_value():
        fail(
            f"cannot serve on {interface} without LEVEL4_FEEDBACK_TOKEN: POST /feedback decides what the model is "
            "retrained on; set a token (clients send Authorization: Bearer <token>) or bind to 127.0.0.1"
        )
    serve_command(load_settings, create_app, host, port, cannot_start=(ArgumentError, OSError))


def _is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1): only this machine can connect."""
    import ipaddress

    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


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
    from taxi.pipeline.prefect_server import without_heartbeats

    settings_or_fail(load_settings)
    try:
        with without_heartbeats():
            monitor_flow(project_dir=".", month=month, start=start, end=end)
    except MonitoringError as exc:
        fail(f"monitor: {exc}")


@app.command()
def watch(
    month: Annotated[str | None, typer.Option(help="the window (YYYY-MM; default: the latest month)")] = None,
    service_url: Annotated[str | None, typer.Option(help="the running service a retraining's canary uses")] = None,
) -> None:
    """Monitor a window, let policy.yaml decide, and act: alert, quarantine the month, or retrain + release."""
    from level4.flows import MonitoringError
    from level4.flows import watch as watch_flow
    from level4.policy import PolicyError
    from taxi.deployment import DeploymentError
    from taxi.pipeline.prefect_server import without_heartbeats

    settings_or_fail(load_settings)
    try:
        with without_heartbeats():
            watch_flow(project_dir=".", month=month, service_url=service_url)
    except (MonitoringError, PolicyError, DeploymentError) as exc:
        fail(f"watch: {exc}")


@app.command()
def replay(
    scenario: Annotated[str, typer.Option(help="drift, stationary or data_quality")] = "drift",
    port: Annotated[int, typer.Option(help="the service's port on 127.0.0.1")] = 8004,
    trips: Annotated[int, typer.Option(min=500, help="trips of live traffic per month")] = 3000,
) -> None:
    """The year replay: a certified champion, then month by month traffic, feedback, monitoring, the policy and
    what it triggers; ends with the timeline (table + PNG)."""
    import os

    from taxi.pipeline.prefect_server import PrefectServerError, background_prefect_server, without_heartbeats
    from taxi.warm_stages import PRELOAD, warm_process

    settings_or_fail(load_settings)
    # Prefect's server first, in the background: its start-up overlaps the imports below and the replay's set-up;
    # and a warm process for the stages of every `dvc repro` (their imports done once: taxi.warm_stages)
    try:
        with (
            background_prefect_server(Path(os.environ.get("PREFECT_HOME") or ".prefect")) as prefect,
            warm_process("level4.cli:app", [*PRELOAD, "level4.reference"]),
        ):
            import taxi.tracking  # noqa: F401  (first: it imports skops before MLflow, seconds faster than after)
            from level4.policy import PolicyError
            from level4.replay import ReplayError, run_replay
            from taxi.deployment import DeploymentError
            from taxi.pipeline.tools import ToolError

            try:
                with without_heartbeats():
                    done = run_replay(Path.cwd(), scenario, port, trips=trips, echo=typer.echo, prefect=prefect)
            except Exception as exc:
                from level4.flows import MonitoringError  # not before: Evidently is imported while the service starts

                if isinstance(exc, (ReplayError, MonitoringError, PolicyError, DeploymentError, ToolError)):
                    fail(f"replay: {exc}")
                raise
    except PrefectServerError as exc:
        fail(f"replay: {exc}")
    from level4.timeline import table

    typer.echo("\n" + table(done.months).to_string(index=False))
    typer.echo(f"\n{sum(m.requests for m in done.months)} requests, {done.failed_requests} failed; "
               f"{done.seconds:.0f} s. Timeline: {done.paths['md']}, {done.paths['png']}")  # fmt: skip
    gc.freeze()  # the process ends now: the collector's last pass over its millions of objects took seconds


@app.command()
def orchestrate(
    port: Annotated[int, typer.Option(help="the local Prefect server's port (when PREFECT_API_URL is unset)")] = 4304,
    service_url: Annotated[str | None, typer.Option(help="the running service a retraining's canary uses")] = None,
) -> None:
    """Serve watch (monthly) and retrain (started by the policy's event) as Prefect deployments until Ctrl-C."""
    from level4.orchestrate import orchestrate as serve_flows
    from taxi.pipeline.prefect_server import PrefectServerError

    settings_or_fail(load_settings)
    try:
        serve_flows(Path.cwd(), port, Path.cwd() / ".prefect", service_url, echo=typer.echo)
    except PrefectServerError as exc:
        fail(f"orchestrate: {exc}")


add_init_git(app)


if __name__ == "__main__":  # pragma: no cover
    app()
