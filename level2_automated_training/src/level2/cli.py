"""`level2`: pipeline stages (run by DVC), release / rollback, serve, smoke, schedule, status."""

from __future__ import annotations

from typing import Annotated

import typer

from level2.settings import load_settings

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.command()
def stage(name: Annotated[str, typer.Argument(help="ingest, validate, prepare, train, evaluate or register")]) -> None:
    """Run one pipeline stage (dvc.yaml calls these; run `dvc repro` rather than calling them by hand)."""
    import importlib

    from level2.stages import NAMES

    if name not in NAMES:
        raise typer.BadParameter(f"must be one of {', '.join(NAMES)}", param_hint="NAME")
    importlib.import_module(f"level2.stages.{name}").run(load_settings())


def _client():
    import mlflow
    from mlflow import MlflowClient

    settings = load_settings()
    mlflow.set_tracking_uri(settings.tracking_uri)
    return settings, MlflowClient()


@app.command()
def release(version: Annotated[str, typer.Argument(help="registered version number to put in production")]) -> None:
    """Point the production alias at VERSION and show what changes."""
    from level2.release import release as run
    from taxi.tracking import RegistryError

    settings, client = _client()
    try:
        done = run(client, settings.model_name, version, settings.serving_alias)
    except RegistryError as exc:
        typer.secho(f"release refused: {exc}; production is unchanged", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    typer.echo(f"released:\n{done.describe()}")
    typer.echo("a running service picks it up when restarted (`make serve`); hot reload comes in level 3")


@app.command()
def rollback() -> None:
    """Return production to the previously released version."""
    from level2.release import rollback as run
    from taxi.tracking import RegistryError

    settings, client = _client()
    try:
        done = run(client, settings.model_name, settings.serving_alias)
    except RegistryError as exc:
        typer.secho(f"rollback refused: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
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
def has_release() -> None:
    """Exit 0 when a version is in production, 1 otherwise (used by `make run`)."""
    from taxi.tracking import alias_version

    settings, client = _client()
    raise typer.Exit(0 if alias_version(client, settings.model_name, settings.serving_alias) else 1)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8002,
) -> None:
    """Serve models:/<name>@production with the shared FastAPI core (docs at /docs)."""
    from level2.service import create_app
    from taxi.serving import run_service
    from taxi.tracking import RegistryError

    raise typer.Exit(run_service(lambda: create_app(load_settings()), host, port, (RegistryError,)))


@app.command()
def smoke(url: Annotated[str, typer.Option(help="base URL of a running service")] = "http://127.0.0.1:8002") -> None:
    """Smoke-test a running service: health, a prediction, a rejected bad request."""
    from taxi.smoke import main

    raise typer.Exit(main(url))


@app.command()
def schedule() -> None:
    """Serve the training flow as a Prefect deployment on the configured cron schedule (Ctrl-C stops)."""
    from level2.flows import training_pipeline

    settings = load_settings()
    typer.echo(f"serving deployment 'scheduled-training/nightly' (cron '{settings.schedule_cron}'); Ctrl-C to stop")
    training_pipeline.serve(name="nightly", cron=settings.schedule_cron, parameters={"project_dir": "."})


if __name__ == "__main__":  # pragma: no cover
    app()
