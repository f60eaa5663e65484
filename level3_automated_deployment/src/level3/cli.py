"""`level3`: pipeline stages (run by DVC), the CD flow, certification, promotion / rollback, trace, serve, A/B test.

The library functions raise named errors; only these commands turn them into one red line and exit 1.

The stage commands (`level3 stage NAME`, run by dvc.yaml) come from the shared package (`taxi.pipeline`), as
in level 2. What this level adds is everything after `register`: `level3 cd` takes a candidate through
certification, staging and a canary to the `champion` alias, or rejects it, and records why.
"""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from level3.settings import load_settings
from taxi.console import fail, settings_or_fail
from taxi.pipeline import add_init_git, stage_cli

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
app.add_typer(stage_cli(load_settings), name="stage")


def _client():
    import mlflow  # not taxi.tracking.client_for: that module brings skops and scikit-learn (seconds) along

    settings = settings_or_fail(load_settings)
    mlflow.set_tracking_uri(settings.tracking_uri)
    return settings, mlflow.MlflowClient()


def _deployer(via: str):
    from taxi.deployment.deployer import Deployer, DeploymentLog

    settings, client = _client()
    return settings, Deployer(client, settings.model_name, DeploymentLog(settings.deploy_log), via=via)


def _parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["ingest.months=4", "ingest.scenario=data_quality"]`` -> a dict, values read as YAML scalars."""
    import yaml

    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"--set takes group.key=value (e.g. ingest.months=4); got {pair!r}")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


# ---- the CD pipeline ----


@app.command()
def cd(
    version: Annotated[int | None, typer.Option(help="deploy this registered version (default: train one)")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="params.yaml override for the training run: group.key=value")
    ] = None,
    service_url: Annotated[
        str | None, typer.Option(help="the running service the canary uses (default: one run by the flow)")
    ] = None,
) -> None:
    """Run the CD flow: train + register (or --version) -> certify -> staging smoke test -> canary -> champion."""
    from contextlib import nullcontext

    from taxi.warm_stages import warm_process

    settings_or_fail(load_settings)
    # a training: its stages run in a warm process's children, which imports while this process does
    with warm_process("level3.cli:app") if version is None else nullcontext():
        from level3.flows import cd_pipeline
        from taxi.certification import GateConfigError
        from taxi.deployment import DeploymentError
        from taxi.pipeline.prefect_server import without_heartbeats
        from taxi.pipeline.tools import ToolError
        from taxi.tracking import RegistryError

        try:
            with without_heartbeats():
                record = cd_pipeline(project_dir=".", version=version, params=_parse_overrides(set_ or []),
                                     service_url=service_url, via="level3 cd")  # fmt: skip
        except (DeploymentError, ToolError, RegistryError, GateConfigError) as exc:
            fail(f"cd: {exc}")
    typer.echo(json.dumps({k: v for k, v in record.items() if k != "canary"}, indent=2))


@app.command()
def certify(version: Annotated[int, typer.Argument(help="registered version to certify")]) -> None:
    """Run the certification gates on VERSION against @champion (report logged to its run, tags set)."""
    from taxi.certification import GateConfigError
    from taxi.deployment.certify import certify_version
    from taxi.pipeline.common import load_params
    from taxi.tracking import RegistryError

    settings, client = _client()
    try:
        result = certify_version(
            client, settings.model_name, version, load_params(settings.params_file),
            holdout_dir=settings.holdout_dir, reports_dir=settings.deploy_log.parent / "certification",
        )  # fmt: skip
    except (RegistryError, GateConfigError) as exc:
        fail(f"certify: {exc}")
    typer.echo(result.summary())
    typer.echo(f"report: {result.report_path} (and certification/ in the version's MLflow run)")


@app.command()
def promote(
    version: Annotated[int, typer.Argument(help="a certified version")],
    reason: Annotated[str, typer.Option(help="why (recorded)")] = "promoted by hand",
) -> None:
    """Point @champion at a certified VERSION by hand (the service picks it up); uncertified: refused."""
    from taxi.deployment.deployer import PromotionRefused
    from taxi.tracking import RegistryError

    _, deployer = _deployer("level3 promote")
    try:
        event = deployer.promote(version, reason)
    except (PromotionRefused, RegistryError) as exc:
        fail(f"promote refused: {exc}")
    typer.echo(event.describe())


@app.command()
def rollback(reason: Annotated[str, typer.Option(help="why (recorded)")] = "rolled back by hand") -> None:
    """Return @champion to the champion before it (from the deployment log); a running service swaps back."""
    from taxi.deployment.deployer import PromotionRefused

    _, deployer = _deployer("level3 rollback")
    try:
        event = deployer.rollback(reason)
    except PromotionRefused as exc:
        fail(f"rollback refused: {exc}")
    typer.echo(event.describe())


@app.command()
def trace(version: Annotated[str, typer.Argument(help="a version number, or an alias such as champion")]) -> None:
    """The chain behind VERSION: run, params, data hash, dvc.lock, git commit, certification, deployment events."""
    from level3.trace import trace as chain
    from taxi.deployment.deployer import DeploymentLog
    from taxi.tracking import RegistryError, alias_version

    settings, client = _client()
    if not version.isdigit():
        found = alias_version(client, settings.model_name, version)
        if found is None:
            fail(f"trace: no version of '{settings.model_name}' has the alias '{version}'")
        version = str(found.version)
    try:
        lines = chain(client, settings.model_name, version, DeploymentLog(settings.deploy_log))
    except RegistryError as exc:
        fail(f"trace: {exc}")
    typer.echo("\n".join(lines))


@app.command()
def status() -> None:
    """Registered versions: certification, aliases, and the last deployment events."""
    from level3.status import status_lines
    from taxi.deployment.deployer import DeploymentLog

    settings, client = _client()
    typer.echo("\n".join(status_lines(client, settings.model_name, DeploymentLog(settings.deploy_log))))


# ---- serving, the A/B test, the demo ----


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="interface to bind (default LEVEL3_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default LEVEL3_PORT)")] = None,
) -> None:
    """Serve @champion (+ @challenger on a share of traffic), hot-swapping as the aliases move (docs at /docs)."""
    import taxi.tracking  # noqa: F401  (first: it imports skops before MLflow, seconds faster than after)
    from level3.service import create_app
    from taxi.deployment.serve import serve_command

    serve_command(load_settings, create_app, host, port)


@app.command("ab-test")
def ab_test(
    url: Annotated[str, typer.Option(help="base URL of the running service")] = "http://127.0.0.1:8003",
    month: Annotated[
        str, typer.Option(help="the month of trips replayed (synthetic, with true durations)")
    ] = "2024-05",
    rows: Annotated[int, typer.Option(help="trips generated for that month")] = 4000,
    scenario: Annotated[str, typer.Option(help="the generator's scenario for that month")] = "stationary",
) -> None:
    """Replay a month through the service's champion/challenger split, join true durations, give a verdict."""
    from level3.ab_test import ABTestError, run_ab_test
    from taxi.deployment.load import ServiceUnavailable
    from taxi.generator import generate_month

    trips = generate_month(month, rows=rows, scenario=scenario, seed=99)
    try:
        result = run_ab_test(url, trips)
    except (ABTestError, ServiceUnavailable) as exc:
        fail(f"ab-test: {exc}")
    typer.echo(result.to_text())


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="the service's port on 127.0.0.1")] = 8003,
) -> None:
    """`make run`'s story: v1 champion, serve it, a better v2 via canary under live load, a bad candidate rejected."""
    import os

    from taxi.pipeline.prefect_server import PrefectServerError, background_prefect_server, without_heartbeats
    from taxi.warm_stages import warm_process

    settings = settings_or_fail(load_settings)
    # Prefect's server first, in the background: its start-up overlaps the imports below and the story's set-up;
    # and a warm process for the stages of the three `dvc repro` runs (their imports done once: taxi.warm_stages)
    try:
        with (
            background_prefect_server(Path(os.environ.get("PREFECT_HOME") or ".prefect")) as prefect,
            warm_process("level3.cli:app"),
        ):
            import taxi.tracking  # noqa: F401  (first: it imports skops before MLflow, seconds faster than after)
            from level3.demo import DemoError, run_demo

            try:
                with without_heartbeats():
                    run_demo(Path.cwd(), settings, port, echo=typer.echo, prefect=prefect)
            except DemoError as exc:
                fail(f"demo: {exc}")
    except PrefectServerError as exc:
        fail(f"demo: {exc}")
    gc.freeze()  # the process ends now: the collector's last pass over its millions of objects took seconds


add_init_git(app)


if __name__ == "__main__":  # pragma: no cover
    app()
