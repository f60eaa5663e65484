"""`make levelN` wall times, each in a throwaway copy of the current working tree, on the root venv.

The copy holds the files git tracks or would track (uncommitted work included; runtime state, the venv
and caches left behind, as ``scripts/export_level.py`` selects them), committed into a fresh git repository
so DVC and the lineage tags work as in the real tree. ``make levelN`` then runs there as a user runs it,
with ``UV`` pointed at ``uv_root_venv.py`` (no sync: the root venv's packages, the copy's code first on
PYTHONPATH) and ``PORT`` at a free port, so nothing in the real tree or the root venv changes and no
service of the real tree is disturbed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from export_level import project_files

from benchmark.report import LevelRun
from benchmark.servers import free_port

SHIM = Path(__file__).with_name("uv_root_venv.py")
STEP = re.compile(r"^\s*== .* ==\s*$")  # a level's narrated step headings
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def present_levels(root: Path) -> list[str]:
    return sorted(p.name[5] for p in root.glob("level[0-9]_*") if p.is_dir())


def parse_levels(spec: str, present: Sequence[str]) -> list[str]:
    """``"all"`` -> every level present; ``""`` -> none; ``"1 2"`` or ``"1,2"`` -> those, in order, once each."""
    spec = spec.strip()
    if spec == "all":
        return list(present)
    chosen: list[str] = []
    for token in spec.replace(",", " ").split():
        level = token.removeprefix("level")
        if not level.isdigit():
            raise ValueError(f'LEVELS takes level numbers (e.g. LEVELS="1 2"); got {token!r}')
        if level not in chosen:
            chosen.append(level)
    return chosen


def snapshot(root: Path, dest: Path) -> Path:
    """Copy the working tree's project files to ``dest`` and commit them in a new git repository there."""
    for relative in project_files(root):
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / relative, target)
    identity = ["-c", "user.name=make bench", "-c", "user.email=bench@localhost", "-c", "commit.gpgsign=false"]
    for args in (["init", "-q"], ["add", "-A"], [*identity, "commit", "-q", "-m", "make bench: working tree"]):
        subprocess.run(["git", *args], cwd=dest, check=True, capture_output=True)
    return dest


def docker_reachable() -> bool:
    try:
        done = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def level_env(copy: Path, venv: Path) -> dict[str, str]:
    """The environment of a level run: the root venv first on PATH, the copy's sources first on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not re.match(r"LEVEL\d_|UV_|VIRTUAL_ENV|PYTHONPATH", k)}
    sources = [str(p) for p in sorted(copy.glob("*/src")) if p.is_dir()]
    return env | {
        "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        "VIRTUAL_ENV": str(venv),
        "PYTHONPATH": os.pathsep.join(sources),
    }


def run_level(
    copy: Path, level: str, venv: Path, log_path: Path, timeout: float, echo: Callable[[str], None] = print
) -> LevelRun:
    """``make levelN`` in ``copy``; its output goes to ``log_path`` (step headings echoed as it goes)."""
    command = [
        "make", "--no-print-directory", f"level{level}",
        f"UV={venv / 'bin' / 'python'} {SHIM}", f"PORT={free_port()}",
    ]  # fmt: skip
    began = time.monotonic()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, cwd=copy, env=level_env(copy, venv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, errors="replace", start_new_session=True,
        )  # fmt: skip
        timer = threading.Timer(timeout, _kill_group, (process,))
        timer.start()
        try:
            for line in process.stdout:
                log.write(line)
                plain = ANSI.sub("", line)
                if STEP.match(plain):
                    echo(f"    {plain.strip()}")
            code = process.wait()
        finally:
            timer.cancel()
    seconds = time.monotonic() - began
    if seconds >= timeout:
        return LevelRun(level, seconds, f"stopped after {timeout:.0f} s", f"log: {log_path}")
    if code != 0:
        tail = "".join(log_path.read_text(errors="replace").splitlines(keepends=True)[-20:])
        echo(f"    make level{level} failed (exit {code}); last lines of {log_path}:\n{tail}")
        return LevelRun(level, seconds, f"failed (exit {code})", f"log: {log_path}")
    return LevelRun(level, seconds, "ok")


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def run_levels(
    root: Path, levels: Sequence[str], workdir: Path, timeout: float = 600.0, echo: Callable[[str], None] = print
) -> list[LevelRun]:
    """Snapshot the tree once, then ``make levelN`` for each of ``levels`` there, one after the other."""
    if not levels:
        return []
    present = present_levels(root)
    venv = Path(sys.prefix)
    copy = snapshot(root, workdir / "tree")
    echo(f"  copied the working tree to {copy} (runtime state left out); root venv {venv}, no sync")
    docker = docker_reachable()
    runs = []
    for level in levels:
        if level not in present:
            runs.append(LevelRun(level, None, "skipped: no such level here", f"levels present: {' '.join(present)}"))
            continue
        if not any((folder / "Makefile").exists() for folder in copy.glob(f"level{level}_*")):
            runs.append(LevelRun(level, None, "skipped: the level has no Makefile yet"))
            continue
        echo(f"  make level{level} ...")
        run = run_level(copy, level, venv, workdir / f"level{level}.log", timeout, echo)
        if level == "1" and not docker:
            run = LevelRun(run.level, run.seconds, run.status, "no Docker daemon: image step skipped, smoke on uvicorn")
        echo(f"  make level{level}: {run.status} in {run.seconds:.0f} s")
        runs.append(run)
    return runs
