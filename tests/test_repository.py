"""Repository hygiene: runtime state (data, models, runs, DVC cache) is never committed, whatever .gitignore allows.

Level 2's dvc.lock and reports/ must stay visible to git (DVC experiments refuse an ignored dvc.lock and
cannot read ignored metrics), so only this test stops them from being committed by accident."""

import importlib.util
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("export_level", ROOT / "scripts" / "export_level.py")
export_level = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(export_level)
RUNTIME_STATE = export_level.RUNTIME_STATE


def test_the_pattern_knows_runtime_state():
    for path in ("level2_automated_training/dvc.lock", "level2_automated_training/reports/metrics.json",
                 "level1_devops/models/model.pkl", "x/mlflow.db", "level0_manual/data/a.parquet"):  # fmt: skip
        assert RUNTIME_STATE.search(path), path
    for path in ("level2_automated_training/dvc.yaml", "shared/src/taxi/model.py", "level1_devops/Dockerfile"):
        assert not RUNTIME_STATE.search(path), path


def test_no_runtime_state_is_committed():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    offenders = [path for path in tracked.splitlines() if RUNTIME_STATE.search(path)]
    assert not offenders, f"runtime state is tracked by git (git rm --cached it): {offenders}"
