"""The CD flow under Prefect's test harness, on a real DVC project in a temporary git repository: a candidate
promoted, one rejected, one rolled back at the canary, one at the staging smoke test; the service serving
@champion over HTTP, swapping when the alias moves, and showing each served version's deployment events."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from level3.service import create_app
from level3.trace import trace
from taxi.deployment.deployer import CANDIDATE, CHALLENGER, CHAMPION, STAGING, Deployer, DeploymentLog
from taxi.deployment.params import apply_params
from taxi.pipeline.scratch import scratch_project
from taxi.serving import serve_in_thread
from taxi.smoke import SAMPLE_TRIP, SmokeTestFailed


@pytest.fixture(scope="module")
def project(lab, level_files, tmp_path_factory, monkeypatch_module) -> Path:
    """This level's DVC pipeline in a fresh git repo (small months), its settings in the environment; it
    shares the lab's registry, so the lab's other candidates can be registered beside what it trains."""
    LEVEL, _, TEST_PARAMS = level_files
    env = {
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        "LEVEL3_TRACKING_URI": lab.settings.tracking_uri,
        "LEVEL3_MODEL_NAME": "flow",
        "LEVEL3_POLL_INTERVAL": "0.5",
        "DO_NOT_TRACK": "1",
    }
    for key, value in env.items():
        monkeypatch_module.setenv(key, value)
    overrides = {**TEST_PARAMS, "ingest.rows": 3000, "train.max_iter": 40}
    return scratch_project(LEVEL, tmp_path_factory.mktemp("repo"), overrides, name="level3", env=dict(os.environ))


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def harness():
    """Prefect's test harness (a temporary server), started once for this module's flow runs."""
    from prefect.testing.utilities import prefect_test_harness

    from taxi.pipeline.prefect_server import without_heartbeats

    with prefect_test_harness(), without_heartbeats():  # heartbeats off as in `level3 cd`: runs end with their work
        yield


def _aliases(lab, name: str) -> dict[str, str]:
    return {alias: str(v) for alias, v in lab.client.get_registered_model(name).aliases.items()}


def _champion_by_hand(lab, project: Path, name: str, kind: str) -> str:
    """A registered ``kind`` model as ``name``'s champion, recorded in the project's deployment log
    (certification itself is tested elsewhere)."""
    from level3.flows import project_settings

    version = lab.register(kind, name)
    lab.client.set_model_version_tag(name, version, "certified", "true")
    log = DeploymentLog(project_settings(project).deploy_log)
    Deployer(lab.client, name, log, via="tests").promote(version, "the champion before the flow runs")
    return version


def test_cd_flow_promotes_good_candidates_and_rejects_a_bad_one(project, lab, harness):
    from level3.flows import cd_pipeline, project_settings

    settings = project_settings(project)
    first = cd_pipeline(project_dir=str(project))  # trains, registers v1: no champion yet
    assert _aliases(lab, "flow") == {CHAMPION: "1"}  # @candidate and @staging tidied away
    bad, better = lab.register("shuffled", "flow"), lab.register("better", "flow")
    rejected = cd_pipeline(project_dir=str(project), version=int(bad))
    promoted = cd_pipeline(project_dir=str(project), version=int(better))  # canary on the flow's own service

    assert (first["decision"], first["stage"], first["champion"]) == ("promoted", "first release", "1")
    assert "no canary" in first["reason"]
    assert (rejected["decision"], rejected["stage"]) == ("rejected", "certification")
    assert "quality" in rejected["failed_gates"] and rejected["champion"] == "1"
    assert rejected["reason"].startswith("quality failed: ")
    assert (promoted["decision"], promoted["stage"], promoted["champion"]) == ("promoted", "canary", better)
    assert promoted["canary"]["passed"]
    assert _aliases(lab, "flow") == {CHAMPION: better}  # only the live alias is left

    log = DeploymentLog(settings.deploy_log)
    moves = [(e.alias, e.action, e.version) for e in log.events("flow") if e.action != "decision"]
    assert (CHAMPION, "set", "1") in moves and (CHALLENGER, "set", better) in moves
    assert (CHAMPION, "set", bad) not in moves and (STAGING, "set", bad) not in moves
    assert (STAGING, "remove", "1") in moves and (STAGING, "remove", better) in moves
    assert log.champion_history("flow") == ["1", better]
    lines = [e.describe() for e in log.events("flow", better)]
    assert any(f"@{CHALLENGER} removed from v{better}  by " in line for line in lines), lines
    assert not any("(was v" + better + ")" in line for line in lines), lines  # no "removed from v2 (was v2)"

    text = "\n".join(trace(lab.client, "flow", "1", log))  # the trained version: the whole chain, dvc.lock included
    assert "dvc.lock (lineage/dvc.lock of the run): stage train matches the version's data md5" in text
    assert "-> certification CERTIFIED" in text and "@champion -> v1" in text and "v1 promoted at first release" in text

    # /model of the service (as `level3 serve` builds it) shows the champion's deployment events, promotion included
    with serve_in_thread(create_app(settings)) as url:
        body = httpx.get(f"{url}/model", timeout=30).json()
    assert body["version"] == better and set(body["deployments"]) == {better}
    events = body["deployments"][better]
    promotion = [e for e in events if (e["alias"], e["action"]) == (CHAMPION, "set")]
    assert promotion and promotion[-1]["previous"] == "1" and promotion[-1]["reason"].startswith("canary passed")
    assert events[-1]["action"] == "decision" and events[-1]["details"]["decision"] == "promoted"


def test_cd_flow_rolls_back_a_candidate_that_fails_the_canary(project, lab, harness, monkeypatch):
    """A real canary failure: params.yaml's canary limits tightened to (almost) no prediction shift, so an honest,
    certified candidate fails the live comparison with the champion; it never becomes champion."""
    from level3.flows import cd_pipeline, project_settings

    name = "flow-canary"
    monkeypatch.setenv("LEVEL3_MODEL_NAME", name)
    champion = _champion_by_hand(lab, project, name, "good")
    candidate = lab.register("better", name)
    params = project / "params.yaml"
    original = params.read_text()
    apply_params(params, {"canary.max_mean_shift": 0.0001, "canary.max_psi": 0.0001})
    try:
        record = cd_pipeline(project_dir=str(project), version=int(candidate))
    finally:
        params.write_text(original)

    assert (record["decision"], record["stage"]) == ("rolled back", "canary")
    assert (record["champion_before"], record["champion"]) == (champion, champion)
    assert not record["canary"]["passed"] and "prediction_shift" in record["reason"]
    assert _aliases(lab, name) == {CHAMPION: champion}  # @challenger and @staging removed
    log = DeploymentLog(project_settings(project).deploy_log)
    moves = [(e.alias, e.action) for e in log.events(name, candidate) if e.action != "decision"]
    assert moves == [
        (CANDIDATE, "set"), (STAGING, "set"), (CANDIDATE, "remove"), (CHALLENGER, "set"), (CHALLENGER, "remove"),
        (STAGING, "remove"),
    ]  # fmt: skip
    assert log.champion_history(name) == [champion]
    decision = log.events(name, candidate)[-1]
    assert decision.action == "decision" and decision.details["decision"] == "rolled back"
    assert decision.what() == f"v{candidate} rolled back at canary"
    assert lab.client.get_model_version(name, candidate).tags["deployment_decision"] == "rolled back"


def test_cd_flow_rolls_back_a_candidate_that_fails_the_staging_smoke_test(project, lab, harness, monkeypatch):
    """A failed staging smoke test: @staging removed, the champion untouched, the decision recorded.

    The fault is injected at the smoke-test call: a certified candidate that the staging service then cannot
    serve has no real form here. Certification loads the candidate exactly as the service does
    (``taxi.tracking.RegistryModel``) and sends it the API's own trips, edge cases included (the smoke test's
    trip among them), and every setting the staging service uses is validated before it starts; a version the
    staging service cannot load at all is the task's own test (``test_staging_smoke_test_reports_...``). So
    the real smoke call is replaced by one that checks the staging service really serves the candidate over
    HTTP, then fails as a broken ``/predict`` would."""
    import taxi.deployment.cd
    from level3.flows import cd_pipeline, project_settings

    name = "flow-staging"
    monkeypatch.setenv("LEVEL3_MODEL_NAME", name)
    champion = _champion_by_hand(lab, project, name, "good")
    candidate = lab.register("better", name)
    staged = []

    def broken_predict(url: str, echo=print) -> float:
        staged.append(httpx.get(f"{url}/health", timeout=30).json()["model_version"])
        raise SmokeTestFailed("POST /predict answered 500: {'detail': 'Internal Server Error'}")

    monkeypatch.setattr(taxi.deployment.cd, "smoke_test", broken_predict)
    record = cd_pipeline(project_dir=str(project), version=int(candidate))

    assert staged == [candidate]  # the staging service ran, serving the candidate
    assert (record["decision"], record["stage"]) == ("rolled back", "staging smoke test")
    assert "POST /predict answered 500" in record["reason"]
    assert (record["champion_before"], record["champion"]) == (champion, champion)
    assert _aliases(lab, name) == {CHAMPION: champion}
    log = DeploymentLog(project_settings(project).deploy_log)
    moves = [(e.alias, e.action) for e in log.events(name, candidate) if e.action != "decision"]
    assert moves == [(CANDIDATE, "set"), (STAGING, "set"), (CANDIDATE, "remove"), (STAGING, "remove")]
    removed = next(e for e in log.events(name, candidate) if (e.alias, e.action) == (STAGING, "remove"))
    assert removed.reason.startswith("staging smoke test failed: SmokeTestFailed: POST /predict answered 500")
    assert log.events(name, candidate)[-1].what() == f"v{candidate} rolled back at staging smoke test"


def test_service_serves_the_champion_and_swaps_when_the_alias_moves(lab):
    name = "service"
    first, second = lab.register("good", name), lab.register("better", name)
    deployer = Deployer(lab.client, name, DeploymentLog(lab.settings_for(name).deploy_log), via="tests")
    for version in (first, second):
        lab.client.set_model_version_tag(name, version, "certified", "true")
    deployer.promote(first, "first")
    settings = lab.settings_for(name).model_copy(update={"admin_token": SecretStr("s3cret"), "poll_interval": 60.0})

    with serve_in_thread(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as http:
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


def test_model_shows_the_served_versions_deployment_events_whatever_the_log_holds(lab):
    name = "events"
    settings = lab.settings_for(name)
    first, second = lab.register("good", name), lab.register("better", name)
    deployer = Deployer(lab.client, name, DeploymentLog(settings.deploy_log), via="tests")
    for version in (first, second):
        lab.client.set_model_version_tag(name, version, "certified", "true")
    for i in range(12):  # more events than /model shows
        deployer.set_alias(STAGING, first, f"staged {i}")
    deployer.promote(first, "the champion")
    deployer.set_alias(CHALLENGER, second, "canary")
    with settings.deploy_log.open("a") as log:  # a crash cut a line short; someone appended something else
        log.write('{"model": "events", "version": "1", "act\n[1, 2, 3]\n')
    deployer.decision(first, "promoted", "by hand", "the champion")

    with serve_in_thread(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as http:
        body = http.get("/model").json()
        assert (body["version"], body["challenger"]["version"]) == (first, second)
        shown = body["deployments"]
        assert set(shown) == {first, second} and body["deployment_log"]["skipped_lines"] == 2
        assert len(shown[first]) == 10  # the last ten of its 14 events
        assert [(e["alias"], e["action"]) for e in shown[first][-2:]] == [(CHAMPION, "set"), (None, "decision")]
        assert [(e["alias"], e["action"], e["reason"]) for e in shown[second]] == [(CHALLENGER, "set", "canary")]

        settings.deploy_log.write_bytes(b"\xff\xfe not even text\n")
        body = http.get("/model")
        assert body.status_code == 200 and body.json()["deployments"] == {first: [], second: []}
        settings.deploy_log.unlink()
        body = http.get("/model")
        assert body.status_code == 200 and body.json()["deployments"] == {first: [], second: []}


def test_staging_smoke_test_reports_a_service_that_cannot_serve(lab):
    from level3.flows import release_for
    from taxi.deployment.cd import staging_smoke_test

    release = release_for(lab.settings_for("no-such-model"), lab.dir)
    failure = staging_smoke_test.fn(release)  # the task's function, without Prefect
    assert failure and "no-such-model" in failure
