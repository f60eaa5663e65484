"""Stands in for `uv` when the benchmark runs `make levelN` in a throwaway copy of the tree.

    make level2 UV="<root venv python> scripts/benchmark/uv_root_venv.py"

`sync` does nothing: the root venv is already synced, and a real `uv sync` from the copy would repoint the
root venv's editable installs at the copy (deleted after the run). `run CMD...` runs CMD as `uv run
--no-sync` would: the caller (benchmark.levels) has put the root venv first on PATH and the copy's sources
first on PYTHONPATH, so the copy's code runs on the root venv's packages. Anything else goes to the real uv.
"""

from __future__ import annotations

import os
import shutil
import sys


def main(argv: list[str]) -> int:
    command, *rest = argv or ["--help"]
    if command == "sync":
        return 0
    if command == "run":
        if not rest:
            print("uv run: nothing to run", file=sys.stderr)
            return 2
        os.execvp(rest[0], rest)
    uv = shutil.which("uv")
    if uv is None:
        print("uv not found on PATH", file=sys.stderr)
        return 2
    os.execv(uv, [uv, *argv])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
