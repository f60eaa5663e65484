"""Every GitHub workflow is valid (GitHub's workflow JSON schema, via check-jsonschema) and thin: its
steps call Make targets rather than carrying their own logic."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def test_there_are_workflows():
    assert {p.stem for p in WORKFLOWS} >= {"ci", "level1"}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_the_github_schema(workflow):
    checker = shutil.which("check-jsonschema")
    assert checker, "check-jsonschema missing: run `make setup`"
    done = subprocess.run(
        [checker, "--builtin-schema", "vendor.github-workflows", str(workflow)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_steps_call_make_targets(workflow):
    spec = yaml.safe_load(workflow.read_text())
    runs = [step["run"] for job in spec["jobs"].values() for step in job["steps"] if "run" in step]
    assert runs and any(r.strip().startswith("make ") for r in runs)
    for job in spec["jobs"].values():
        for step in job["steps"]:
            if "run" in step and "make " not in step["run"]:
                assert "docker push" in step["run"], f"{workflow.name}: step {step.get('name')!r} is not a make target"
