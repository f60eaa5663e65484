"""Copy one level out of the workspace as a standalone project.

    python scripts/export_level.py 2 ../my-project

DEST gets the level's files at its root and the shared package in DEST/shared; the workspace source of
``taxi-shared`` becomes a path dependency, and a lock of its own is written with ``uv lock``. Only files
git tracks (or would track) are copied, so no runtime state leaves with the level.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKSPACE_SOURCE = re.compile(r"taxi-shared\s*=\s*\{\s*workspace\s*=\s*true\s*\}")
PATH_SOURCE = 'taxi-shared = { path = "shared", editable = true }'
# Runtime state never leaves with a level, even where .gitignore lets git see it (level 2's dvc.lock and
# reports/ must stay visible to git for DVC experiments). tests/test_repository.py uses the same pattern.
RUNTIME_STATE = re.compile(
    r"(^|/)(mlruns|mlartifacts|\.prefect|data|models|handoff|outputs|reports|build|dvc-remote|dvc_plots)/"
    r"|(^|/)(mlflow\.db|dvc\.lock)$|\.(parquet|pkl|skops|joblib)$|(^|/)\.dvc/(cache|tmp)/"
)


class ExportError(RuntimeError):
    """The level cannot be exported as asked: the message says why."""


def ruff_config() -> str:
    """The workspace's [tool.ruff...] tables, so `make lint` judges the copy by the same rules."""
    tables = re.split(r"(?m)^(?=\[)", (ROOT / "pyproject.toml").read_text())
    return "".join(t for t in tables if t.startswith("[tool.ruff"))


def level_dir(level: str) -> Path:
    matches = sorted(ROOT.glob(f"level{level}_*"))
    if not matches:
        existing = ", ".join(p.name for p in sorted(ROOT.glob("level[0-9]_*"))) or "none"
        raise ExportError(f"no level {level!r} here (levels present: {existing})")
    return matches[0]


def project_files(folder: Path) -> list[Path]:
    """Files of ``folder`` that git tracks or would track, runtime state left behind."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "."],
        cwd=folder, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    names = [name for name in out.split("\0") if name and not RUNTIME_STATE.search(name)]
    return [Path(name) for name in names if (folder / name).is_file()]


def copy_tree(src: Path, dest: Path) -> int:
    files = project_files(src)
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, target)
    return len(files)


def export(level: str, dest: Path) -> Path:
    src = level_dir(level)
    if dest.exists() and any(dest.iterdir()):
        raise ExportError(f"{dest} exists and is not empty: choose a new folder")
    dest.mkdir(parents=True, exist_ok=True)
    n = copy_tree(src, dest) + copy_tree(ROOT / "shared", dest / "shared")
    shutil.copy2(ROOT / ".python-version", dest / ".python-version")
    level_ignores = (src / ".gitignore").read_text() if (src / ".gitignore").exists() else ""
    (dest / ".gitignore").write_text((ROOT / ".gitignore").read_text() + "\n# this level's own\n" + level_ignores)
    workflow = ROOT / ".github" / "workflows" / f"level{level}.yml"
    if workflow.exists():  # the level's CI, now at the project's root
        text = workflow.read_text().replace(f"working-directory: {src.name}", "working-directory: .")
        (dest / ".github" / "workflows").mkdir(parents=True, exist_ok=True)
        (dest / ".github" / "workflows" / workflow.name).write_text(text.replace(f"{src.name}/**", "**"))

    pyproject = dest / "pyproject.toml"
    text, count = WORKSPACE_SOURCE.subn(PATH_SOURCE, pyproject.read_text())
    if count != 1:
        raise ExportError(f"{src.name}/pyproject.toml has no `taxi-shared = {{ workspace = true }}` source to rewrite")
    pyproject.write_text(text + "\n" + ruff_config())
    for dvc_file in dest.glob("dvc.yaml"):  # code deps on the shared package: ../shared/ -> shared/
        dvc_file.write_text(dvc_file.read_text().replace("../shared/", "shared/"))
    shutil.copy2(ROOT / "uv.lock", dest / "uv.lock")  # `uv lock` keeps the workspace's pinned versions
    uv = os.environ.get("UV") or shutil.which("uv") or "uv"  # `uv run` sets UV to its own binary
    subprocess.run([uv, "lock", "--quiet"], cwd=dest, check=True)
    print(f"exported {src.name} ({n} files) to {dest}")
    print(f"next: cd {dest} && make setup && make test && make run")
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("level", help="level number, 0-4")
    parser.add_argument("dest", type=Path, help="new folder for the standalone project")
    args = parser.parse_args(argv)
    try:
        export(args.level, args.dest.resolve())
    except ExportError as exc:
        print(f"export refused: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
