"""Stage a minimal Docker build context for the service image (`make image` builds it there).

The same staging works in the workspace (shared/ beside this level) and in a level exported on its own
(shared/ inside it): the shared package is found from its installed location, the requirements are
exported from whichever uv.lock governs this project.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import level1
import taxi

LEVEL_DIR = Path(level1.__file__).resolve().parents[2]
SHARED_DIR = Path(taxi.__file__).resolve().parents[2]


def _uv() -> str:
    return os.environ.get("UV") or shutil.which("uv") or "uv"


def _copy_src(package_dir: Path, dest: Path) -> None:
    shutil.copytree(package_dir / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def stage_context(dest: Path, handoff_dir: Path) -> Path:
    """Write the build context to ``dest``: Dockerfile, requirements.lock.txt, shared/, level/, handoff/."""
    if not (handoff_dir / "model.pkl").exists():
        raise SystemExit(f"no model in {handoff_dir}: run `make train handoff` first")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in ("Dockerfile", ".dockerignore"):
        shutil.copy2(LEVEL_DIR / name, dest / name)
    export = [_uv(), "export", "--frozen", "--no-dev", "--no-header", "--package", "level1-devops",
              "--no-emit-project", "--no-emit-package", "taxi-shared"]  # fmt: skip
    export += ["-o", str(dest / "requirements.lock.txt")]
    subprocess.run(export, cwd=LEVEL_DIR, check=True, capture_output=True)
    _copy_src(SHARED_DIR, dest / "shared")
    _copy_src(LEVEL_DIR, dest / "level")
    shutil.copytree(handoff_dir, dest / "handoff")
    return dest


def docker_available() -> tuple[bool, str]:
    """(True, '') when a Docker daemon answers; otherwise (False, why)."""
    if shutil.which("docker") is None:
        return False, "the docker command is not installed"
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return False, "docker info timed out"
    if done.returncode != 0:
        last_line = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "docker info failed"
        return False, f"no Docker daemon reachable ({last_line})"
    return True, ""
