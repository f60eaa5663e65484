"""`level2 experiment`: a small learning-rate sweep as DVC experiments, compared in DVC and in MLflow.

Run safely in a sub-folder of a larger repository:
- DVC experiments are git refs of the *whole* repository and `dvc exp run` snapshots every tracked change
  in it, so the sweep refuses to start while files outside this folder have uncommitted changes;
- it runs the pipeline up to `evaluate` only (a sweep registers nothing in the model registry);
- params.yaml is restored afterwards and the workspace checked out at the baseline again (the DVC run
  cache brings the baseline outputs back without retraining).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import mlflow

from level2.settings import Settings
from taxi.pipeline import tools

SWEEP = {"train.learning_rate": ["0.05", "0.2"], "train.max_leaf_nodes": ["63"]}


class ExperimentError(RuntimeError):
    """The sweep cannot start (uncommitted changes outside the level) or an experiment failed."""


def changes_outside(folder: Path) -> list[str]:
    """Tracked files with uncommitted changes outside ``folder`` (they would be swept into experiments)."""
    top = Path(tools.run(["git", "rev-parse", "--show-toplevel"]).stdout.strip())
    inside = folder.resolve().relative_to(top).as_posix()
    status = tools.run(["git", "status", "--porcelain", "--untracked-files=no"]).stdout.splitlines()
    paths = [line[3:] for line in status]
    return [p for p in paths if inside != "." and not p.startswith(inside + "/")]


def sweep(settings: Settings, echo: Callable[[str], None] = print) -> None:
    """Run SWEEP as DVC experiments in the current folder, then compare them in DVC and MLflow."""
    here = Path.cwd()
    foreign = changes_outside(here)
    if foreign:
        raise ExperimentError(
            "DVC experiments snapshot the whole git repository, and these files outside "
            f"{here.name}/ have uncommitted changes:\n  " + "\n  ".join(foreign[:10]) + "\ncommit or stash them first."
        )
    params = settings.params_file
    baseline = params.read_text()
    try:
        for key, values in SWEEP.items():
            for value in values:
                params.write_text(baseline)  # each experiment = the baseline + one change
                echo(f"experiment: {key}={value} (dvc exp run evaluate -S {key}={value})")
                try:
                    tools.run(["dvc", "exp", "run", "evaluate", "-S", f"{key}={value}"])
                except tools.ToolError as exc:
                    raise ExperimentError(str(exc)) from None
    finally:
        params.write_text(baseline)
        tools.run(["dvc", "repro", "evaluate"], check=False)  # back to the baseline, from the run cache
    keep = "^(Experiment|Created|rmse|mae|train.learning_rate|train.max_leaf_nodes)$"
    echo(tools.run(["dvc", "exp", "show", "--no-pager", "--md", "--drop", ".*", "--keep", keep]).stdout)
    mlflow.set_tracking_uri(settings.tracking_uri)
    runs = mlflow.search_runs(experiment_names=[settings.experiment], order_by=["metrics.rmse ASC"], max_results=10)
    columns = [c for c in ("run_id", "params.train.learning_rate", "params.train.max_leaf_nodes", "metrics.rmse")
               if c in runs.columns]  # fmt: skip
    echo("MLflow runs of this experiment, best first (`make mlflow-ui` to compare them there):")
    echo(runs[columns].to_string(index=False))
