"""`make experiment`: a small learning-rate sweep as DVC experiments, compared in DVC and in MLflow.

Run safely in a sub-folder of a larger repository:
- DVC experiments are git refs of the *whole* repository and `dvc exp run` snapshots every tracked change
  in it, so the sweep refuses to start while files outside this folder have uncommitted changes;
- it runs the pipeline up to `evaluate` only (a sweep registers nothing in the model registry);
- params.yaml is restored afterwards and the workspace checked out at the baseline again (the DVC run
  cache brings the baseline outputs back without retraining).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow

from level2.settings import Settings

SWEEP = {"train.learning_rate": ["0.05", "0.2"], "train.max_leaf_nodes": ["63"]}


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    return subprocess.run(cmd, check=check, text=True, env=env, capture_output=True)


def changes_outside(folder: Path) -> list[str]:
    """Tracked files with uncommitted changes outside ``folder`` (they would be swept into experiments)."""
    top = Path(_run("git", "rev-parse", "--show-toplevel").stdout.strip())
    inside = folder.resolve().relative_to(top).as_posix()
    status = _run("git", "status", "--porcelain", "--untracked-files=no").stdout.splitlines()
    paths = [line[3:] for line in status]
    return [p for p in paths if inside != "." and not p.startswith(inside + "/")]


def main() -> None:
    here = Path.cwd()
    foreign = changes_outside(here)
    if foreign:
        sys.exit(
            "experiment refused: DVC experiments snapshot the whole git repository, and these files outside "
            f"{here.name}/ have uncommitted changes:\n  " + "\n  ".join(foreign[:10]) + "\ncommit or stash them first."
        )
    params = Path("params.yaml")
    baseline = params.read_text()
    try:
        for key, values in SWEEP.items():
            for value in values:
                params.write_text(baseline)  # each experiment = the baseline + one change
                print(f"experiment: {key}={value} (dvc exp run evaluate -S {key}={value})")
                done = _run("dvc", "exp", "run", "evaluate", "-S", f"{key}={value}", check=False)
                if done.returncode != 0:
                    sys.exit(f"dvc exp run failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    finally:
        params.write_text(baseline)
        _run("dvc", "repro", "evaluate", check=False)  # back to the baseline, from the run cache
    keep = "^(Experiment|Created|rmse|mae|train.learning_rate|train.max_leaf_nodes)$"
    print(_run("dvc", "exp", "show", "--no-pager", "--md", "--drop", ".*", "--keep", keep).stdout)
    settings = Settings()
    mlflow.set_tracking_uri(settings.tracking_uri)
    runs = mlflow.search_runs(experiment_names=[settings.experiment], order_by=["metrics.rmse ASC"], max_results=10)
    columns = [c for c in ("run_id", "params.train.learning_rate", "params.train.max_leaf_nodes", "metrics.rmse")
               if c in runs.columns]  # fmt: skip
    print("MLflow runs of this experiment, best first (`make mlflow-ui` to compare them there):")
    print(runs[columns].to_string(index=False))


if __name__ == "__main__":
    main()
