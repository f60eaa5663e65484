"""Repository hygiene: runtime state is never committed (DESIGN §6), whatever .gitignore allows.

Level 2's dvc.lock and reports/ must stay visible to git (DVC experiments refuse an ignored dvc.lock and
cannot read ignored metrics), so only this test stops them from being committed by accident."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_STATE = re.compile(
    r"(^|/)(mlruns|mlartifacts|\.prefect|data|models|handoff|outputs|reports|build|dvc-remote|dvc_plots)/"
    r"|(^|/)(mlflow\.db|dvc\.lock)$|\.(parquet|pkl|skops|joblib)$|(^|/)\.dvc/(cache|tmp)/"
)


def test_no_runtime_state_is_committed():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    offenders = [path for path in tracked.splitlines() if RUNTIME_STATE.search(path)]
    assert not offenders, f"runtime state is tracked by git (git rm --cached it): {offenders}"
