"""`level2`: pipeline stages (run by DVC), repro, release / rollback, serve, smoke, schedule, status.

The library functions raise named errors; only these commands turn them into one red line and exit 1.

The stage commands (`level2 stage NAME`, run by dvc.yaml) come from the shared package, which levels 3 and 4
reuse too: see `taxi.pipeline`, one module a stage, for what each reads, does and writes. This level wires
them: dvc.yaml (paths), params.yaml (parameters) and its settings (tracking URI, experiment, model name).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from level2.settings import load_settings
from taxi.console import fail, settings_or_fail
from taxi.pipeline import add_init_git, stage_cli

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
app.add_typer(stage_cli(load_settings), name="stage")

REGISTERED = Path("reports/registered.json")


def _client():
    from taxi.tracking import client_for

    settings = settings_or_fail(load_settings)
    return settings, client_for(settings.tracking_uri)


# ---- running the pipeline, releasing, serving ----


@app.command()
def repro(push: Annotated[bool, typer.Option(help="dvc push afterwards")] = True) -> None:
    """`dvc repro` (only the stages whose deps or params changed), then `dvc push` to the DVC remote. The stages run
    in a warm process's children (taxi.warm_stages: their imports done once, while DVC starts)."""
    from taxi.pipeline import tools
    from taxi.warm_stages import warm_process

    before = _registered()
    try:
        with warm_process("level2.cli:app"):
            tools.repro(push=push, echo=typer.echo)
    except tools.ToolError as exc:
        fail(str(exc))
    after = _registered()
    if after and after != before and after["new"]:  # releasing is a human decision at this level
        typer.echo(f"release it with `make release VERSION={after['version']}` (`make status` compares versions)")


def _registered() -> dict | None:
    """What the register stage wrote last (reports/registered.json), or None before any run."""
    return json.loads(REGISTERED.read_text()) if REGISTERED.exists() else None


def _registered_version(path: Path) -> str:
    if not path.exists():
        fail(f"{path} not found: run the pipeline first (`make repro`)")
    return str(json.loads(path.read_text())["version"])


@app.command()
def release(
    version: Annotated[str | None, typer.Argument(help="registered version number to put in production")] = None,
    latest: Annotated[bool, typer.Option(help="the version the pipeline registered last (registered.json)")] = False,
) -> None:
    """Point the production alias at VERSION (or --latest) and show what changes."""
    from level2.release import release as run
    from taxi.tracking import RegistryError

    if (version is None) == (not latest):
        fail("name one version: `level2 release N` (`make release VERSION=N`; see `make status`) or --latest")
    settings, client = _client()
    try:
        done = run(client, settings.model_name, version or _registered_version(REGISTERED), settings.serving_alias)
    except RegistryError as exc:
        fail(f"release refused: {exc}; production is unchanged")
    typer.echo(f"released:\n{done.describe()}")
    typer.echo("a running service picks it up when restarted (`make serve`); hot reload comes in level 3")


@app.command()
def first_release() -> None:
    """Release the latest registered version if no version is in production yet; otherwise say which is."""
    from taxi.tracking import alias_version

    settings, client = _client()
    current = alias_version(client, settings.model_name, settings.serving_alias)
    if current is None:
        release(latest=True)
        return
    typer.echo(
        f"version {current.version} is already in production: release another with `make release VERSION=n`"
        " (`make status` lists them)"
    )


@app.command()
def rollback() -> None:
    """Return production to the previously released version."""
    from level2.release import rollback as run
    from taxi.tracking import RegistryError

    settings, client = _client()
    try:
        done = run(client, settings.model_name, settings.serving_alias)
    except RegistryError as exc:
        fail(f"rollback refused: {exc}")
    typer.echo(f"rolled back:\n{done.describe()}")


@app.command()
def status() -> None:
    """Registered versions, their metrics and lineage, and which one is in production."""
    from taxi.tracking import alias_version

    settings, client = _client()
    versions = sorted(client.search_model_versions(f"name = '{settings.model_name}'"), key=lambda v: int(v.version))
    if not versions:
        typer.echo(f"no registered versions of '{settings.model_name}' yet: run `make repro`")
        return
    production = alias_version(client, settings.model_name, settings.serving_alias)
    typer.echo(f"{'version':>7}  {'RMSE':>7}  {'train months':<22} {'data md5':<10} {'git':<9} alias")
    for v in versions:
        mark = settings.serving_alias if production and production.version == v.version else ""
        t = v.tags
        typer.echo(
            f"{v.version:>7}  {t.get('rmse', '?'):>7}  {t.get('train_months', '?'):<22} "
            f"{t.get('data_md5', '?')[:8]:<10} {t.get('git_commit', '?')[:8]:<9} {mark}"
        )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8002,
) -> None:
    """Serve models:/<name>@production with the shared FastAPI core (docs at /docs). No release, an unreachable
    registry or a refused model artifact: one line saying what to do, exit 1."""
    from level2.service import create_app
    from taxi.registry_serving import (
        CannotStart,
        explain_start_failures,
        limit_remote_retries,
        quiet_artifact_downloads,
    )
    from taxi.serving import run_service
    from taxi.tracking import RegistryError

    settings = settings_or_fail(load_settings)
    limit_remote_retries(settings.tracking_uri)  # a tracking server that does not answer: seconds, not minutes
    quiet_artifact_downloads()
    create = explain_start_failures(lambda: create_app(settings), str(settings.model_config.get("env_prefix", "")))
    raise typer.Exit(run_service(create, host, port, (CannotStart, RegistryError)))


@app.command()
def smoke(url: Annotated[str, typer.Option(help="base URL of a running service")] = "http://127.0.0.1:8002") -> None:
    """Smoke-test a running service: health, a prediction, a rejected bad request."""
    from taxi.smoke import main

    raise typer.Exit(main(url))


# ---- around the pipeline: schedule, experiments, the MLflow UI, git ----


@app.command()
def schedule(
    prefect_port: Annotated[int, typer.Option(help="local Prefect server's port (if PREFECT_API_URL is unset)")] = 4202,
) -> None:
    """Serve the training flow as a Prefect deployment on the configured cron schedule (Ctrl-C stops)."""
    from level2.schedule import PrefectServerError, serve_training

    settings = settings_or_fail(load_settings)
    home = Path(os.environ.get("PREFECT_HOME", ".prefect")).resolve()
    try:
        serve_training(settings.schedule_cron, Path.cwd(), prefect_port, home, echo=typer.echo)
    except PrefectServerError as exc:
        fail(str(exc))


@app.command()
def experiment() -> None:
    """A small learning-rate sweep as DVC experiments (train + evaluate only), compared in DVC and MLflow."""
    from level2.experiments import ExperimentError, sweep

    try:
        sweep(settings_or_fail(load_settings), echo=typer.echo)
    except ExperimentError as exc:
        fail(f"experiment refused: {exc}")


@app.command()
def mlflow_ui(port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 5002) -> None:
    """The MLflow UI over LEVEL2_TRACKING_URI (a tracking server has its own UI: its address is printed)."""
    from taxi.pipeline import tools

    uri = settings_or_fail(load_settings).tracking_uri
    if uri.startswith(("http://", "https://")):
        typer.echo(f"the tracking server has its own UI: open {uri}")
        return
    typer.echo(f"MLflow UI: http://127.0.0.1:{port} (backend {uri}; Ctrl-C to stop)")
    command = [tools.tool("mlflow"), "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(port)]
    os.execvpe(command[0], command, tools.tool_env())  # mlflow takes over this process (and Ctrl-C)


add_init_git(app)


if __name__ == "__main__":  # pragma: no cover
    app()
