"""`level1`: ingest, train, handoff, serve, smoke. Each step prints what it did and what is still manual."""

from __future__ import annotations

from typing import Annotated

import typer

from level1.settings import load_settings
from taxi.model import format_metrics

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.command()
def ingest() -> None:
    """Gather the configured months into data/raw/ (idempotent, validated)."""
    from level1.ingest import ingest as run

    settings = load_settings()
    typer.echo(f"ingesting {len(settings.month_list)} month(s) from {settings.source} into {settings.raw_dir}/")
    result = run(settings, echo=typer.echo)
    typer.echo(
        f"done: {len(result.ingested)} ingested, {len(result.skipped)} already there, {len(result.rejected)} rejected"
    )


@app.command()
def train() -> None:
    """Fit the shared model on the ingested months (last month held out) and write model.pkl + model.json."""
    from level1.train import train as run

    result = run(load_settings())
    meta = result.metadata
    typer.echo(
        f"trained on {', '.join(meta['train_months'])} ({meta['train_rows']} trips), tested on {meta['test_month']}:"
    )
    typer.echo(format_metrics(meta["metrics"]))
    typer.echo(f"wrote {result.model_path} (sha256 {meta['sha256'][:12]}...) and {result.metadata_path}")
    typer.secho(
        "note: this model is NOT tracked - no experiment log, no registry; model.json is its only record.",
        fg=typer.colors.YELLOW,
    )


@app.command()
def handoff() -> None:
    """Copy the model file and its metadata to the service's folder."""
    from level1.handoff import handoff as run

    settings = load_settings()
    path = run(settings)
    typer.echo(f"handed off {settings.model_dir}/model.pkl -> {path} (the service and the image load it from there)")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
) -> None:
    """Run the scoring service with uvicorn (docs at /docs)."""
    from level1.service import ModelFileError, create_app
    from taxi.serving import run_service

    raise typer.Exit(run_service(lambda: create_app(load_settings()), host, port, (ModelFileError,)))


@app.command()
def smoke(url: Annotated[str, typer.Option(help="base URL of a running service")] = "http://127.0.0.1:8000") -> None:
    """Smoke-test a running service: health, a prediction, a rejected bad request."""
    from taxi.smoke import main

    raise typer.Exit(main(url))


@app.command()
def model_info() -> None:
    """Print the handed-off model's metadata."""
    metadata = load_settings().model_path.with_suffix(".json")
    if not metadata.exists():
        typer.secho(f"no model metadata at {metadata}: run `make train handoff` first", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    typer.echo(metadata.read_text())


if __name__ == "__main__":  # pragma: no cover
    app()
