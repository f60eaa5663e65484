"""Recurring training: a Prefect flow that runs the DVC pipeline, pushes data and models to the DVC
remote, and reports the version it registered. `make schedule` serves it as a deployment on a cron
schedule (Prefect needs a server for schedules: `make schedule` starts a local one if none is set)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from prefect import flow, get_run_logger, task
from ruamel.yaml import YAML

from taxi.pipeline import tools


def set_param(params_file: Path, dotted: str, value: Any) -> None:
    """Change one value of params.yaml, keeping its comments and layout."""
    yaml = YAML()
    data = yaml.load(params_file.read_text())
    *parents, leaf = dotted.split(".")
    node = data
    for key in parents:
        node = node[key]
    node[leaf] = value
    with params_file.open("w") as f:
        yaml.dump(data, f)


@task
def use_months(project: Path, first_month: str) -> None:
    set_param(project / "params.yaml", "ingest.first_month", first_month)


@task
def reproduce(project: Path) -> str:
    return tools.run(["dvc", "repro"], cwd=project).stdout


@task
def push(project: Path) -> str:
    """dvc push to the default remote; a remote that cannot take the data fails the run with one line naming it."""
    return tools.push_to_remote(project)


def registered(project: Path) -> dict[str, Any] | None:
    """What reports/registered.json names (the register stage writes it), or None before any run."""
    path = project / "reports" / "registered.json"
    return json.loads(path.read_text()) if path.exists() else None


@task
def production_version(name: str) -> str | None:
    from level2.settings import load_settings
    from taxi.tracking import alias_version

    settings = load_settings()
    mlflow.set_tracking_uri(settings.tracking_uri)
    version = alias_version(MlflowClient(), name, settings.serving_alias)
    return version.version if version else None


@flow(name="scheduled-training", log_prints=True)
def training_pipeline(project_dir: str = ".", first_month: str | None = None, push_to_remote: bool = True) -> dict:
    """dvc repro (only what changed) -> dvc push -> the registered version. ``first_month`` moves the
    training window (params.yaml ingest.first_month) before running, as a nightly job on new data would.
    Returns reports/registered.json, with ``new`` saying whether this run registered that version."""
    log = get_run_logger()
    project = Path(project_dir).resolve()
    if first_month:
        use_months(project, first_month)
    before = registered(project)
    output = reproduce(project)
    log.info("dvc repro:\n%s", "\n".join(line for line in output.splitlines() if not tools.is_noise(line)))
    if push_to_remote:
        push(project)
    result = registered(project)
    is_new = result != before and result["new"]
    production = None if is_new else production_version(result["name"])
    log.info(outcome(result, before, production))
    return {**result, "new": is_new}


def outcome(result: dict[str, Any], before: dict[str, Any] | None, production: str | None) -> str:
    """What a run did, in one line: a new version, or none (and which version is in production)."""
    if result != before and result["new"]:
        return f"registered: {result['name']} version {result['version']}"
    where = f"production is version {production}" if production else "no version is in production yet"
    if result == before:
        return f"no new version (pipeline up to date); {where}"
    return f"no new version (the model trained is already version {result['version']}); {where}"
