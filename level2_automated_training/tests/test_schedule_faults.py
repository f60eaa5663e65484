"""The platform around level 2's training is down, for real: `level2 schedule` with PREFECT_API_URL at a
loopback port nothing listens on, `level2 repro` pushing to a DVC remote that cannot take the data. Each is
one red line naming what is down, exit 1, no traceback."""

import os
import subprocess
import sys

import yaml

from taxi.pipeline.scratch import one_stage_project
from taxi.pipeline.tools import tool_env
from taxi.smoke import free_port


def _level2(cwd, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "level2.cli", *args],
        cwd=cwd, env={**tool_env(), **env}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_schedule_with_the_prefect_server_down_is_one_line_and_exit_1(tmp_path):
    api_url = f"http://127.0.0.1:{free_port()}/api"
    done = _level2(tmp_path, "schedule", PREFECT_API_URL=api_url, PREFECT_HOME=str(tmp_path / ".prefect"))
    assert done.returncode == 1, done.stdout + done.stderr
    line = done.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith(f"the Prefect server at {api_url} (PREFECT_API_URL) is not reachable")
    assert "serving deployment" not in done.stdout  # nothing was served


def test_repro_with_the_dvc_remote_down_is_one_line_and_keeps_the_results(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/remote"
    project = one_stage_project(tmp_path / "project", env=os.environ, remote=url)
    done = _level2(project, "repro")
    assert done.returncode == 1
    line = done.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith(f"dvc push to the DVC remote 'store' ({url}) failed: ") and "run `dvc push`" in line
    assert "Cannot connect" in line
    assert "Running stage 'make'" in done.stdout  # repro ran, and its results stay
    assert yaml.safe_load((project / "dvc.lock").read_text())["stages"]["make"]["outs"][0]["path"] == "out.txt"
    assert (project / "out.txt").read_text() == "trips\n"
