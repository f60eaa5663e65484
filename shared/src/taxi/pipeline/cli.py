"""The stage commands DVC runs: ``stage_cli(load_settings)`` builds them for a level, which mounts them.

    from taxi.pipeline import stage_cli
    app.add_typer(stage_cli(load_settings), name="stage")   # levelN stage ingest|validate|...|register

Each command takes the stage's paths as options (dvc.yaml passes its deps and outs), reads params.yaml
(``settings.params_file``) for the rest, and calls the stage function. The stage functions raise named
errors; only these commands turn them into one red line and exit 1.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Protocol

import typer

from taxi.console import fail, settings_or_fail


class PipelineSettings(Protocol):
    """What the stages need from a level's settings (pydantic-settings fields of the same names)."""

    tracking_uri: str  # MLflow tracking URI: train and evaluate log there, register registers there
    experiment: str  # the MLflow experiment of the training runs
    model_name: str  # the registered model register adds versions to
    params_file: Path  # params.yaml: the pipeline's parameters (ingest, prepare, train)


In = Annotated[Path, typer.Option(exists=True, help="input (a dep in dvc.yaml)")]
Out = Annotated[Path, typer.Option(help="output (an out in dvc.yaml)")]


def stage_cli(load_settings: Callable[[], PipelineSettings]) -> typer.Typer:
    """The typer sub-app with the six stage commands, each reading the level's settings with ``load_settings``
    (a taxi.settings.SettingsError it raises becomes one red line)."""
    app = typer.Typer(
        help="Run one pipeline stage. dvc.yaml calls these with the stage's deps and outs as arguments: "
        "run `dvc repro` rather than calling them by hand.",
        no_args_is_help=True,
    )

    def settings() -> PipelineSettings:
        return settings_or_fail(load_settings)

    def params() -> dict[str, Any]:
        from taxi.pipeline.common import StageError, load_params

        try:
            return load_params(settings().params_file)
        except StageError as exc:
            fail(str(exc))

    def run_stage(name: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        from taxi.loader import DataSourceError
        from taxi.pipeline.common import StageError, check_tracking
        from taxi.validation import DataValidationError

        try:
            if "tracking_uri" in kwargs:  # before the stage's work: a server that does not answer is one line
                check_tracking(kwargs["tracking_uri"], _uri_setting(settings()))
            function(*args, **kwargs)
        except (StageError, DataValidationError, DataSourceError) as exc:
            fail(f"{name}: {exc}")
        # The process ends now. Its objects (MLflow's, scikit-learn's, pandas': millions) are frozen out of the
        # garbage collector's last pass at exit, which took 1.5-2 s a stage on 2 cores (files still close and
        # flush, exit handlers still run).
        gc.freeze()

    @app.command("ingest")
    def stage_ingest(out: Out, downloads: Annotated[Path, typer.Option(help="tlc source: fetched files kept here")]):
        """params.yaml `ingest`: the configured months from the configured source into OUT."""
        from taxi.pipeline.ingest import ingest

        run_stage("ingest", ingest, params()["ingest"], out, downloads)

    @app.command("validate")
    def stage_validate(raw: In, out: Out, report: Out) -> None:
        """Validate each month of RAW into OUT; row counts to REPORT. A broken month stops the pipeline."""
        from taxi.pipeline.common import months_of
        from taxi.pipeline.validate import validate

        run_stage("validate", validate, raw, out, report, months_of(params()["ingest"]))

    @app.command("prepare")
    def stage_prepare(validated: In, out: Out) -> None:
        """Validated months -> OUT/train.parquet + OUT/test.parquet (params.yaml `prepare`: the newest held out)."""
        from taxi.pipeline.prepare import Split, prepare

        run_stage("prepare", lambda: prepare(validated, out, Split.of(params())))

    @app.command("train")
    def stage_train(data: In, model: Out, run: Out) -> None:
        """Fit on DATA (params.yaml `train`), save MODEL, record the MLflow run in RUN."""
        from taxi.pipeline.train import train

        s = settings()
        run_stage("train", train, data, model, run, params(), tracking_uri=s.tracking_uri, experiment=s.experiment)

    @app.command("evaluate")
    def stage_evaluate(model: In, run: In, data: In, reports: Out) -> None:
        """Score MODEL on DATA; metrics, slices and plots to REPORTS, logged to the MLflow run in RUN."""
        from taxi.pipeline.evaluate import evaluate

        run_stage("evaluate", evaluate, model, run, data, reports, tracking_uri=settings().tracking_uri)

    @app.command("register")
    def stage_register(run: In, metrics: In, out: Out) -> None:
        """Register the model of RUN in the MLflow Model Registry; OUT names the version."""
        from taxi.pipeline.register import register

        s = settings()
        run_stage("register", register, run, metrics, out, model_name=s.model_name, tracking_uri=s.tracking_uri)

    return app


def _uri_setting(settings: PipelineSettings) -> str:
    """The environment variable the tracking URI comes from (e.g. LEVEL2_TRACKING_URI), for messages."""
    prefix = getattr(type(settings), "model_config", {}).get("env_prefix", "")
    return f"{prefix.upper()}TRACKING_URI" if prefix else "the tracking URI"


def add_init_git(app: typer.Typer) -> None:
    """``levelN init-git``: DVC versions data beside git, so a level's folder must be in a git repository
    (``make setup`` runs it; a clone of this repository is one already)."""

    @app.command("init-git")
    def init_git() -> None:
        """DVC versions data beside git: make this folder a git repository unless it is inside one already."""
        from taxi.pipeline.tools import ensure_git_repo

        if ensure_git_repo():
            typer.echo("initialised a git repository here (DVC needs one)")
