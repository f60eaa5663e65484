"""`level1`: ingest, train, handoff, serve, smoke, image, container-smoke, release-check.

Each step prints what it did and what is still manual. The library functions raise named errors;
only these commands turn them into one red line and exit code 1.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from level1.settings import load_settings
from taxi.console import fail, settings_or_fail
from taxi.model import format_metrics

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

DEFAULT_IMAGE = "level1-devops:latest"
DEFAULT_CONTAINER = "level1-devops-run"
Port = Annotated[int, typer.Option(help="port on 127.0.0.1")]
ImageTag = Annotated[str, typer.Option("--image", "--tag", help="image tag")]


@app.command()
def ingest(
    allow_partial: Annotated[
        bool, typer.Option(help="exit 0 even when a requested month was rejected (the others are kept)")
    ] = False,
) -> None:
    """Gather the configured months into data/raw/ (idempotent, validated). A rejected month exits 1."""
    from level1.ingest import ingest as run

    settings = settings_or_fail(load_settings)
    typer.echo(f"ingesting {len(settings.month_list)} month(s) from {settings.source} into {settings.raw_dir}/")
    result = run(settings, echo=typer.echo)
    typer.echo(
        f"done: {len(result.ingested)} ingested, {len(result.skipped)} already there, {len(result.rejected)} rejected"
    )
    if result.rejected and not allow_partial:
        fail(
            f"ingest incomplete: {', '.join(result.rejected)} rejected (reasons in {settings.raw_dir / 'rejected'}/); "
            "pass --allow-partial to accept the months that were ingested"
        )


@app.command()
def train() -> None:
    """Fit the shared model on the ingested months (last month held out) and write model.pkl + model.json."""
    from level1.train import TrainingDataError
    from level1.train import train as run

    try:
        result = run(settings_or_fail(load_settings))
    except TrainingDataError as exc:
        fail(f"cannot train: {exc}")
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
    from level1.handoff import NoModelError
    from level1.handoff import handoff as run

    settings = settings_or_fail(load_settings)
    try:
        path = run(settings)
    except NoModelError as exc:
        fail(f"cannot hand off: {exc}")
    typer.echo(f"handed off {settings.model_dir}/model.pkl -> {path} (the service and the image load it from there)")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
) -> None:
    """Run the scoring service with uvicorn (docs at /docs)."""
    from level1.service import ModelFileError, create_app
    from taxi.serving import run_service

    settings = settings_or_fail(load_settings)
    raise typer.Exit(run_service(lambda: create_app(settings), host, port, (ModelFileError,)))


@app.command()
def smoke(url: Annotated[str, typer.Option(help="base URL of a running service")] = "http://127.0.0.1:8000") -> None:
    """Smoke-test a running service: health, a prediction, a rejected bad request."""
    from taxi.smoke import main

    raise typer.Exit(main(url))


@app.command()
def image(
    tag: ImageTag = DEFAULT_IMAGE,
    context: Annotated[Path, typer.Option(help="where to stage the build context")] = Path("build/image"),
    skip_without_docker: Annotated[
        bool, typer.Option(help="say so and exit 0 when no Docker daemon is reachable (make run)")
    ] = False,
) -> None:
    """Stage the build context (locked requirements, code, handed-off model) and build the service image."""
    from level1.image import ImageError, build_image, docker_available, image_size_mb, stage_context

    available, why = docker_available()
    if not available and skip_without_docker:
        typer.secho(f"SKIPPED - {why}: the release check serves with uvicorn directly", fg=typer.colors.YELLOW)
        return
    if not available:
        fail(f"cannot build the image: {why}")
    try:
        stage_context(context, settings_or_fail(load_settings).handoff_dir)
        typer.echo(f"staged {context}/: Dockerfile, requirements.lock.txt (exported from uv.lock), shared/, level/, "
                   "handoff/")  # fmt: skip
        built = build_image(context, tag)
    except ImageError as exc:
        fail(str(exc))
    typer.echo(f"built {tag} ({image_size_mb(built):.0f} MB)")


@app.command()
def container_smoke(
    image: ImageTag = DEFAULT_IMAGE,
    port: Port = 8001,
    name: Annotated[str, typer.Option(help="container name")] = DEFAULT_CONTAINER,
) -> None:
    """Run the image on 127.0.0.1:PORT, smoke-test it, wait for its HEALTHCHECK, stop and remove it."""
    from level1.image import ImageError, docker_client
    from level1.image import container_smoke as run

    try:
        run(docker_client(), image, port, name, echo=typer.echo)
    except ImageError as exc:
        fail(str(exc))
    typer.echo("release check passed")


@app.command()
def release_check(
    image: ImageTag = DEFAULT_IMAGE,
    port: Port = 8001,
    name: Annotated[str, typer.Option(help="container name")] = DEFAULT_CONTAINER,
) -> None:
    """The container's smoke test (container-smoke); where no Docker daemon answers, uvicorn's instead."""
    from level1.image import docker_available
    from taxi.smoke import serve_and_smoke

    available, why = docker_available()
    if available:
        container_smoke(image=image, port=port, name=name)
        return
    typer.secho(f"{why}: starting the service with uvicorn directly instead of the image", fg=typer.colors.YELLOW)
    command = [sys.executable, "-m", "level1.cli", "serve", "--port", str(port)]
    if serve_and_smoke(command, port, Path("build/serve.log"), echo=typer.echo) != 0:
        raise typer.Exit(1)


@app.command()
def model_info() -> None:
    """Print the handed-off model's metadata."""
    metadata = settings_or_fail(load_settings).model_path.with_suffix(".json")
    if not metadata.exists():
        fail(f"no model metadata at {metadata}: run `make train handoff` first")
    typer.echo(metadata.read_text())


if __name__ == "__main__":  # pragma: no cover
    app()
