"""Release and rollback move the production alias; an unknown version is refused and nothing changes."""

import json
import subprocess
import sys

import pytest

from level2.release import release, rollback
from taxi.tracking import RegistryError, alias_version

NAME = "trip-duration"


@pytest.fixture
def two_versions(project):
    client = project.client()
    if len(client.search_model_versions(f"name = '{NAME}'")) < 2:
        from level2.flows import set_param

        set_param(project.dir / "params.yaml", "train.learning_rate", 0.15)
        project.repro()
    return client


def _production(client) -> str | None:
    version = alias_version(client, NAME, "production")
    return str(version.version) if version else None


def test_release_rollback_and_refusals(two_versions):
    client = two_versions
    first = release(client, NAME, 1)
    assert first.old is None and _production(client) == "1"
    second = release(client, NAME, 2)
    assert str(second.old.version) == "1" and str(second.new.version) == "2" and _production(client) == "2"
    assert "was: version 1" in second.describe() and "now: version 2" in second.describe()

    with pytest.raises(RegistryError, match="has no version 99"):
        release(client, NAME, 99)
    assert _production(client) == "2"  # unchanged

    back = rollback(client, NAME)
    assert str(back.old.version) == "2" and str(back.new.version) == "1" and _production(client) == "1"
    assert "rolled_back_at" in client.get_model_version(NAME, "2").tags
    with pytest.raises(RegistryError, match="nothing to roll back"):
        rollback(client, NAME)
    assert _production(client) == "1"


def test_cli_refuses_unknown_version_clearly(project, two_versions):
    before = _production(two_versions)
    done = _cli(project, "release", "42")
    assert done.returncode == 1
    assert "has no version 42" in done.stderr and "production is unchanged" in done.stderr
    assert "Traceback" not in done.stderr
    assert _production(two_versions) == before


def test_rollback_refuses_when_the_alias_was_moved_by_hand(two_versions):
    client = two_versions
    release(client, NAME, 1)
    release(client, NAME, 2)
    client.set_registered_model_alias(NAME, "production", "1")  # someone moved it in the UI
    with pytest.raises(RegistryError, match="moved outside"):
        rollback(client, NAME)
    assert _production(client) == "1"


def test_release_before_anything_is_registered_is_refused(project):
    client = project.client()
    with pytest.raises(RegistryError, match="no registered model 'nothing-here'"):
        rollback(client, "nothing-here")
    with pytest.raises(RegistryError, match="has no version 1"):
        release(client, "nothing-here", 1)


def _cli(project, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "level2.cli", *args],
        cwd=project.dir, env=project.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_release_latest_and_first_release(project, two_versions):
    done = _cli(project, "release")
    assert done.returncode == 1 and "name one version" in done.stderr and "Traceback" not in done.stderr
    release(two_versions, NAME, 1)
    done = _cli(project, "first-release")  # something is in production already: nothing changes
    assert done.returncode == 0 and "version 1 is already in production" in done.stdout
    assert _production(two_versions) == "1"
    latest = json.loads((project.dir / "reports" / "registered.json").read_text())["version"]
    done = _cli(project, "release", "--latest")
    assert done.returncode == 0, done.stderr
    assert _production(two_versions) == str(latest) and f"now: version {latest}" in done.stdout
