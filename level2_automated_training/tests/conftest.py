"""A real DVC project in a temporary git repository, a real sqlite MLflow, Prefect's test harness."""

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from level2.flows import set_param
from level2.settings import Settings

LEVEL = Path(__file__).resolve().parent.parent
SHARED = Path(__import__("taxi").__file__).resolve().parents[2]


@dataclass
class Project:
    dir: Path
    env: dict[str, str]
    settings: Settings

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(cmd, cwd=self.dir, env=self.env, capture_output=True, text=True, timeout=600)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    def repro(self) -> str:
        return self.run("dvc", "repro").stdout

    def client(self) -> MlflowClient:
        mlflow.set_tracking_uri(self.settings.tracking_uri)
        return MlflowClient(self.settings.tracking_uri)


@pytest.fixture(scope="session")
def project(tmp_path_factory) -> Project:
    """This level's pipeline in a fresh git repo, laid out as this folder is, run once."""
    repo = tmp_path_factory.mktemp("repo")
    level = repo / "level2"
    level.mkdir()
    # dvc.yaml names the shared code beside this folder (workspace) or inside it (an exported copy)
    beside = "../shared/" in (LEVEL / "dvc.yaml").read_text()
    shared_copy = (repo if beside else level) / "shared" / "src"
    shutil.copytree(SHARED / "src", shared_copy, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(LEVEL / "src", level / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", "params.yaml", ".dvcignore", ".gitignore"):
        shutil.copy2(LEVEL / name, level / name)
    params = level / "params.yaml"
    for key, value in {"ingest.rows": 1500, "ingest.months": 3, "train.max_iter": 40}.items():
        set_param(params, key, value)

    tracking_uri = f"sqlite:///{repo / 'mlflow.db'}"
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "LEVEL2_TRACKING_URI": tracking_uri,
        "DO_NOT_TRACK": "1",
        "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com",
    }  # fmt: skip
    project = Project(level, env, Settings(tracking_uri=tracking_uri, params_file=params))
    project.run("git", "init", "-q", str(repo))
    project.run("dvc", "init", "--subdir", "-q")
    project.run("dvc", "config", "core.analytics", "false")
    project.run("dvc", "remote", "add", "-d", "local", str(repo / "dvc-remote"))
    project.run("git", "add", "-A")
    project.run("git", "commit", "-qm", "level 2 pipeline")
    project.first_output = project.repro()
    return project
