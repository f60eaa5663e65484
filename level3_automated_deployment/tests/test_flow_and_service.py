"""The CD flow under Prefect's test harness, on a real DVC project in a temporary git repository; the service
serving @champion over HTTP and swapping when the alias moves."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from level3.deploy import CHAMPION, Deployer, DeploymentLog
from level3.flows import apply_params
from level3.service import create_app, running
from level3.trace import trace
from taxi.smoke import SAMPLE_TRIP


def _run(cwd: Path, env: dict[str, str], *cmd: str) -> None:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(cmd)}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"


@pytest.fixture(scope="module")
def project(lab, level_files, tmp_path_factory, monkeypatch_module) -> Path:
    """This level's DVC pipeline in a fresh git repo (small months), its settings in the environment; it
    shares the lab's registry, so the lab's other candidates can be registered beside what it trains."""
    LEVEL, SHARED, TEST_PARAMS = level_files
    repo = tmp_path_factory.mktemp("repo")
    level = repo / "level3"
    beside = "../shared/" in (LEVEL / "dvc.yaml").read_text()  # workspace, or an exported copy
    shutil.copytree(SHARED / "src", (repo if beside else level) / "shared" / "src",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copytree(LEVEL / "src", level / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", "params.yaml", ".dvcignore", ".gitignore"):
        shutil.copy2(LEVEL / name, level / name)
    apply_params(level / "params.yaml", {**TEST_PARAMS, "ingest.rows": 3000, "train.max_iter": 40})
    env = {
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        "LEVEL3_TRACKING_URI": lab.settings.tracking_uri,
        "LEVEL3_MODEL_NAME": "flow",
        "LEVEL3_POLL_INTERVAL": "0.5",
        "DO_NOT_TRACK": "1",
        "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com",
    }  # fmt: skip
    for key, value in env.items():
        monkeypatch_module.setenv(key, value)
    full = {**os.environ}
    _run(repo, full, "git", "init", "-q")
    _run(level, full, "dvc", "init", "--subdir", "-q")
    _run(level, full, "dvc", "config", "core.analytics", "false")
    _run(level, full, "dvc", "remote", "add", "-d", "local", str(repo / "dvc-remote"))
    _run(repo, full, "git", "add", "-A")
    _run(repo, full, "git", "commit", "-qm", "level 3")
    return level


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_cd_flow_promotes_good_candidates_and_rejects_a_bad_one(project, lab):
    from prefect.testing.utilities import prefect_test_harness

    from level3.flows import cd_pipeline, project_settings

    settings = project_settings(project)
    with prefect_test_harness():
        first = cd_pipeline(project_dir=str(project))  # trains, registers v1: no champion yet
        bad, better = lab.register("shuffled", "flow"), lab.register("better", "flow")
        rejected = cd_pipeline(project_dir=str(project), version=int(bad))
        promoted = cd_pipeline(project_dir=str(project), version=int(better))  # canary on the flow's own service

    assert (first["decision"], first["stage"], first["champion"]) == ("promoted", "first release", "1")
    assert "no canary" in first["reason"]
    assert (rejected["decision"], rejected["stage"]) == ("rejected", "certification")
    assert "quality" in rejected["failed_gates"] and rejected["champion"] == "1"
    assert (promoted["decision"], promoted["stage"], promoted["champion"]) == ("promoted", "canary", better)
    assert promoted["canary"]["passed"]

    log = DeploymentLog(settings.deploy_log)
    moves = [(e.alias, e.action, e.version) for e in log.events("flow") if e.action != "decision"]
    assert (CHAMPION, "set", "1") in moves and ("challenger", "set", better) in moves
    assert (CHAMPION, "set", bad) not in moves and ("staging", "set", bad) not in moves
    assert log.champion_history("flow") == ["1", better]

    text = "\n".join(trace(lab.client, "flow", "1", log))  # the trained version: the whole chain, dvc.lock included
    assert "dvc.lock (lineage/dvc.lock of the run): stage train matches the version's data md5" in text
    assert "-> certification CERTIFIED" in text and "@champion -> v1" in text and "v1 promoted" in text


def test_service_serves_the_champion_and_swaps_when_the_alias_moves(lab):
    name = "service"
    first, second = lab.register("good", name), lab.register("better", name)
    deployer = Deployer(lab.client, name, DeploymentLog(lab.settings_for(name).deploy_log), via="tests")
    for version in (first, second):
        lab.client.set_model_version_tag(name, version, "certified", "true")
    deployer.promote(first, "first")
    settings = lab.settings_for(name).model_copy(update={"admin_token": SecretStr("s3cret"), "poll_interval": 60.0})

    with running(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as http:
        answer = http.post("/predict", json=SAMPLE_TRIP).json()
        assert (answer["model_version"], answer["variant"]) == (first, "champion")
        deployer.promote(second, "better")
        assert http.post("/admin/reload").status_code == 401
        assert http.post("/admin/reload", headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert http.post("/predict", json=SAMPLE_TRIP).json()["model_version"] == first  # refused: no reload
        reload = http.post("/admin/reload", headers={"Authorization": "Bearer s3cret"})
        assert reload.status_code == 200 and reload.json()["changed"]
        assert http.post("/predict", json=SAMPLE_TRIP).json()["model_version"] == second
        assert f'version="{second}"' in http.get("/metrics").text


def test_staging_smoke_test_reports_a_service_that_cannot_serve(lab):
    from level3.flows import staging_smoke_test

    failure = staging_smoke_test.fn(lab.settings_for("no-such-model"))  # the task's function, without Prefect
    assert failure and "no-such-model" in failure
