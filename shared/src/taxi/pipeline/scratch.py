"""A scratch copy of a level's DVC project in a fresh git repository, for tests that run the real pipeline.

    level = scratch_project(LEVEL, tmp / "repo", {"ingest.rows": 3000, "train.max_iter": 40}, name="level4")
    # level/: src/, dvc.yaml, params.yaml (+ the overrides), policy.yaml ...; git + dvc initialised, a local remote

    toy = one_stage_project(tmp / "toy", env=os.environ, remote="http://127.0.0.1:9/remote")
    # toy/: dvc.yaml with one stage (echo -> out.txt), git + dvc initialised, that default remote: seconds, not minutes

The shared package's source goes where the level's ``dvc.yaml`` expects it: beside the level (``../shared``) in
the workspace, inside it (``shared/``) in a copy made by ``make export-level``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import taxi

PROJECT_FILES = ("dvc.yaml", "params.yaml", ".dvcignore", ".gitignore")
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com",
}  # fmt: skip


def _run(cwd: Path, env: Mapping[str, str], *command: str) -> None:
    done = subprocess.run(command, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def scratch_project(
    level: Path,
    repo: Path,
    overrides: Mapping[str, Any],
    *,
    name: str,
    env: Mapping[str, str],
    files: Iterable[str] = PROJECT_FILES,
) -> Path:
    """Copy ``level``'s project into ``repo``/``name`` with params.yaml ``overrides``; git init, dvc init
    (subdir, no analytics), a local DVC remote, one commit. ``env``: the environment git and dvc run with
    (a git identity is added). Returns the project folder."""
    from taxi.deployment.params import apply_params

    project = repo / name
    shared_src = Path(taxi.__file__).resolve().parents[1]
    beside = "../shared/" in (level / "dvc.yaml").read_text()  # workspace, or an exported copy
    shutil.copytree(shared_src, (repo if beside else project) / "shared" / "src",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copytree(level / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for file in files:
        if (level / file).exists():
            shutil.copy2(level / file, project / file)
    apply_params(project / "params.yaml", dict(overrides))
    full = {**env, **GIT_IDENTITY}
    _run(repo, full, "git", "init", "-q")
    _run(project, full, "dvc", "init", "--subdir", "-q")
    _run(project, full, "dvc", "config", "core.analytics", "false")
    _run(project, full, "dvc", "remote", "add", "-d", "local", str(repo / "dvc-remote"))
    _run(repo, full, "git", "add", "-A")
    _run(repo, full, "git", "commit", "-qm", name)
    return project


ONE_STAGE = "stages:\n  make:\n    cmd: echo trips > out.txt\n    outs:\n      - out.txt\n"


def one_stage_project(project: Path, *, env: Mapping[str, str], remote: str) -> Path:
    """A DVC project with one stage (``echo trips > out.txt``) in a fresh git repository at ``project``, its
    default remote ``remote`` (named ``store``): for tests of what happens around a pipeline (pushing to a remote
    that fails), where the level's own pipeline would take minutes. Returns ``project``."""
    project.mkdir(parents=True)
    (project / "dvc.yaml").write_text(ONE_STAGE)
    full = {**env, **GIT_IDENTITY}
    _run(project, full, "git", "init", "-q")
    _run(project, full, "dvc", "init", "-q")
    _run(project, full, "dvc", "config", "core.analytics", "false")
    _run(project, full, "dvc", "remote", "add", "-d", "store", remote)
    return project
