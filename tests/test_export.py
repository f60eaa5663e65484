"""Every level copies out as a standalone project whose own `make setup && make lint && make test` pass."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LEVELS = sorted(p.name for p in ROOT.glob("level[0-4]_*") if (p / "pyproject.toml").exists())


def _run(cmd: list[str], cwd: Path, timeout: int) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_PROJECT"))}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_there_are_levels_to_export():
    assert LEVELS, "no level folders found"


@pytest.mark.parametrize("level", LEVELS)
def test_exported_level_sets_up_and_passes_its_tests(level, tmp_path):
    dest = tmp_path / "my-project"
    number = level[len("level")]
    done = _run([sys.executable, str(ROOT / "scripts" / "export_level.py"), number, str(dest)], ROOT, 300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (dest / "uv.lock").exists() and (dest / "shared" / "pyproject.toml").exists()
    pyproject = (dest / "pyproject.toml").read_text()
    assert 'path = "shared"' in pyproject and "workspace = true" not in pyproject
    assert not list(dest.rglob("*.parquet")), "runtime data was copied"

    result = _run(["make", "setup", "lint", "test"], dest, 1500)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert str(ROOT) not in (dest / "uv.lock").read_text()
    assert " passed" in output


def test_export_refuses_unknown_level_and_non_empty_destination(tmp_path):
    done = _run([sys.executable, str(ROOT / "scripts" / "export_level.py"), "9", str(tmp_path / "x")], ROOT, 60)
    assert done.returncode != 0 and "no level '9'" in done.stderr
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file").write_text("x")
    done = _run([sys.executable, str(ROOT / "scripts" / "export_level.py"), "0", str(tmp_path / "full")], ROOT, 60)
    assert done.returncode != 0
