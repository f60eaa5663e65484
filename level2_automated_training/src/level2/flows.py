"""Recurring training: a Prefect flow that runs the DVC pipeline, pushes data and models to the DVC
remote, and reports the version it registered. `make schedule` serves it as a deployment on a cron
schedule (Prefect needs a server for schedules: `make schedule` starts a local one if none is set)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from ruamel.yaml import YAML


def _dvc(project: Path, *args: str) -> str:
    # the dvc of this environment; stage commands (`level2 stage ...`) come from the same bin folder
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    done = subprocess.run([os.path.join(bin_dir, "dvc"), *args], cwd=project, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


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
    return _dvc(project, "repro")


@task
def push(project: Path) -> str:
    return _dvc(project, "push")


@task
def registered(project: Path) -> dict[str, Any]:
    return json.loads((project / "reports" / "registered.json").read_text())


@flow(name="scheduled-training", log_prints=True)
def training_pipeline(project_dir: str = ".", first_month: str | None = None, push_to_remote: bool = True) -> dict:
    """dvc repro (only what changed) -> dvc push -> the registered version. ``first_month`` moves the
    training window (params.yaml ingest.first_month) before running, as a nightly job on new data would."""
    log = get_run_logger()
    project = Path(project_dir).resolve()
    if first_month:
        use_months(project, first_month)
    output = reproduce(project)
    log.info("dvc repro:\n%s", output.strip() or "(nothing changed)")
    if push_to_remote:
        push(project)
    result = registered(project)
    log.info("registered: %s version %s", result["name"], result["version"])
    return result
