"""Where and on what the benchmark ran: date, commit, cores, CPU model, Python and library versions."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = ("scikit-learn", "mlflow", "fastapi", "uvicorn", "pydantic", "numpy", "pandas", "starlette")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def git_commit(root: Path) -> str:
    """Short commit, with "+ uncommitted changes" when the working tree differs from it."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=normal")
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"
    return f"{commit} + uncommitted changes" if dirty else commit


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def load_average() -> str:
    """The 1-minute load average: other work on the machine competes with what is measured."""
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "unknown"


def machine_info(root: Path) -> dict[str, str]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_commit(root),
        "cores": str(os.cpu_count()),
        "usable_cores": str(usable),
        "cpu": cpu_model(),
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "load_at_start": load_average(),
    }
