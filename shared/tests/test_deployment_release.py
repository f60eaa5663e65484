"""The release machinery on a real sqlite MLflow registry, without a level: the deployment log and rollback,
certification on a holdout the caller hands in, and the CD pipeline (``taxi.deployment.cd.run_cd``) run the way
level 4 runs it: its own holdout, its own service app, a canary on its running service reached with the
admin token, extra tags on the candidate. Level 3's tests run the same pipeline from its flows, DVC included."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI
from mlflow import MlflowClient
from pydantic import SecretStr

from taxi.certification import Holdout
from taxi.deployment import DeploymentError
from taxi.deployment.cd import Release, run_cd
from taxi.deployment.certify import certify_version, stored_report
from taxi.deployment.deployer import (
    CANDIDATE,
    CHALLENGER,
    CHAMPION,
    STAGING,
    Deployer,
    DeploymentLog,
    Event,
    PromotionRefused,
)
from taxi.generator import generate_month
from taxi.hotswap import ModelHolder
from taxi.model import build_trip_pipeline, prepare_trips
from taxi.service_settings import HotSwapServiceFields
from taxi.serving import create_app, serve_in_thread
from taxi.tracking import log_trip_model

ROWS = 3000
TRAIN = {"max_iter": 60, "random_state": 42}
PARAMS = """\
certification:             # the gates' defaults, with fewer timed calls
  operational: {latency_calls: 10, latency_rounds: 1}
canary:                    # a smaller canary; latency limits for a busy test machine
  requests_per_variant: 60
  min_ok_per_variant: 20
  max_p95_ratio: 5.0
  p95_slack_ms: 100
"""


def months(first: str, n: int) -> pd.DataFrame:
    start = pd.Period(first, "M")
    return pd.concat([generate_month(str(start + i), rows=ROWS) for i in range(n)])


@dataclass
class Registry:
    dir: Path
    client: MlflowClient
    settings: HotSwapServiceFields
    runs: dict[str, str]  # kind -> model uri

    def register(self, kind: str, name: str) -> str:
        """A new version of ``name`` holding the ``kind`` model; returns its number."""
        with contextlib.suppress(mlflow.exceptions.MlflowException):  # registered by an earlier call
            self.client.create_registered_model(name)
        return str(self.client.create_model_version(name, self.runs[kind]).version)

    def deployer(self, name: str) -> Deployer:
        return Deployer(self.client, name, DeploymentLog(self.dir / f"{name}.jsonl"), via="tests")


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Iterator[Registry]:
    """Three models logged once: ``good`` (two months), ``better`` (three), ``noise`` (shuffled targets)."""
    root = tmp_path_factory.mktemp("release")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment = client.create_experiment("deployment", artifact_location=(root / "artifacts").as_uri())
    (root / "params.yaml").write_text(PARAMS)
    settings = HotSwapServiceFields(tracking_uri=uri, params_file=root / "params.yaml", poll_interval=0.5)
    trips = {"good": months("2024-01", 2), "better": months("2024-01", 3)}
    trips["noise"] = trips["good"]
    runs = {}
    for kind, frame in trips.items():
        X, y = prepare_trips(frame)
        if kind == "noise":
            y = pd.Series(np.random.default_rng(0).permutation(y.to_numpy()), index=y.index)
        with mlflow.start_run(experiment_id=experiment, run_name=kind):
            runs[kind] = log_trip_model(build_trip_pipeline(TRAIN).fit(X, y), frame).model_uri
    try:
        yield Registry(root, client, settings, runs)
    finally:
        mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="module")
def holdout() -> Holdout:
    """What level 4 certifies on: trips that were served, with their true durations (here: a generated month)."""
    return Holdout.from_trips(generate_month("2024-06", rows=ROWS, seed=7), label="served trips, 2024-06")


# ---- the deployment log ----


def test_the_deployment_log_reads_what_it_can_and_keeps_the_champions_in_order(tmp_path):
    log = DeploymentLog(tmp_path / "reports" / "deployments.jsonl")
    assert log.events() == [] and log.champion_history("m") == []  # no file yet: no events
    for version, action in (("1", "set"), ("2", "set"), ("1", "rollback"), ("3", "set")):
        log.append(Event("m", version, CHAMPION, action, "because", by="me", via="tests"))
    log.append(Event("other", "9", CHAMPION, "set", "elsewhere", by="me", via="tests"))
    with log.path.open("a") as f:  # a crash cut a line short; someone appended something else
        f.write('{"model": "m", "version": "1", "act\n[1, 2, 3]\n{"model": "m", "unknown_field": 1}\n')
    assert log.champion_history("m") == ["1", "3"] and log.skipped == 3
    assert [e.version for e in log.events("m", 1)] == ["1", "1"]
    assert log.events("m")[2].describe().endswith("@champion rolled back to v1  by me via tests: because")
    decision = Event("m", "4", None, "decision", "gates", details={"decision": "rejected", "stage": "certification"})
    assert decision.what() == "v4 rejected at certification"
    log.path.write_bytes(b"\xff\xfe not even text\n")
    assert log.events("m") == []


def test_rollback_restores_the_previous_champion_and_is_logged(registry):
    name = "rollback"
    deployer = registry.deployer(name)
    first, second = registry.register("good", name), registry.register("better", name)
    with pytest.raises(PromotionRefused, match=f"version {first} is not certified \\(never certified\\)"):
        deployer.promote(first, "not yet")
    for version in (first, second):
        registry.client.set_model_version_tag(name, version, "certified", "true")  # certification: below
        deployer.promote(version, f"promote v{version}")
    assert deployer.version_of(CHAMPION) == second

    event = deployer.rollback("v2 misbehaves")
    assert (event.action, event.version, event.previous) == ("rollback", first, second)
    assert deployer.version_of(CHAMPION) == first
    tags = registry.client.get_model_version(name, first).tags
    assert tags["champion_why"] == "v2 misbehaves" and "tests" in tags["champion_by"]
    lines = [json.loads(line) for line in deployer.log.path.read_text().splitlines()]
    assert [(e["action"], e["alias"], e["version"]) for e in lines] == [
        ("set", CHAMPION, first), ("set", CHAMPION, second), ("rollback", CHAMPION, first),
    ]  # fmt: skip
    with pytest.raises(PromotionRefused, match="nothing to roll back to"):
        deployer.rollback("again")

    registry.client.set_registered_model_alias(name, CHAMPION, second)  # moved behind the log's back
    with pytest.raises(PromotionRefused, match="moved outside this log"):
        deployer.rollback("unknown history")


# ---- certification on a given holdout ----


def test_certify_version_on_a_holdout_the_caller_hands_in(registry, holdout):
    name = "certified"
    params = {"certification": {"operational": {"latency_calls": 10, "latency_rounds": 1}}}
    reports = registry.dir / "reports" / name
    good, noise = registry.register("good", name), registry.register("noise", name)

    first = certify_version(registry.client, name, good, params, holdout=holdout, reports_dir=reports)
    assert first.report.passed, first.summary()
    assert first.champion is None and "served trips, 2024-06" in first.summary()
    tags = registry.client.get_model_version(name, good).tags
    assert tags["certified"] == "true" and tags["holdout_fingerprint"] == holdout.fingerprint
    registry.deployer(name).promote(good, "the champion")

    rejected = certify_version(registry.client, name, noise, params, holdout=holdout, reports_dir=reports)
    assert not rejected.report.passed and rejected.champion == good
    assert {"quality", "no_regression"} <= set(rejected.report.failed_gates), rejected.summary()
    assert rejected.report.holdout["fingerprint"] == holdout.fingerprint  # the champion: on the same trips
    assert stored_report(registry.client, name, noise).failed_gates == rejected.report.failed_gates
    assert (reports / f"v{noise}.md").read_text() == rejected.report.to_markdown()

    for both_or_neither in ({"holdout": holdout, "holdout_dir": registry.dir}, {}):
        with pytest.raises(ValueError, match="takes one of holdout"):
            certify_version(registry.client, name, good, params, **both_or_neither)


# ---- the CD pipeline, as level 4 runs it ----


@pytest.fixture(scope="module")
def harness():
    """Prefect's test harness (a temporary server): the CD steps are Prefect tasks, called here outside a flow
    (a level calls them from its own flows), so their logs stay local."""
    from prefect.settings import PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    from taxi.pipeline.prefect_server import without_heartbeats

    ignore = {PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW: "ignore"}
    with prefect_test_harness(), temporary_settings(ignore), without_heartbeats():  # as the levels' commands run flows
        yield


def level_app(settings: HotSwapServiceFields, holder: ModelHolder) -> FastAPI:
    """A level's ``create_app(settings, holder)``: the shared core with the settings' admin token."""
    return create_app(holder, admin_token=settings.token, title="the level's own service")


def test_run_cd_on_a_given_holdout_with_the_levels_app_canary_on_its_running_service(registry, holdout, harness):
    name = "cd"
    settings = registry.settings.model_copy(update={"model_name": name, "challenger_share": 0.5})
    tags = {"retrain_reason": "drift: share of drifted columns 0.6 > 0.5", "retrain_window": "2024-05"}
    release = Release(
        project=registry.dir, settings=settings, create_app=level_app, holdout=holdout,
        deploy_log=registry.dir / "reports" / f"{name}.jsonl", reports_dir=registry.dir / "reports" / "cert",
        via="tests",
    )  # fmt: skip
    client = registry.client

    first = run_cd(release, version=registry.register("good", name), why="the first model")
    assert (first["decision"], first["stage"], first["champion"]) == ("promoted", "first release", "1")
    with pytest.raises(DeploymentError, match="not both"):
        run_cd(release, version=1, params={"ingest.months": 4})

    token = "level-token"
    running = settings.model_copy(update={"admin_token": SecretStr(token), "poll_interval": 60.0})
    with serve_in_thread(release.app(running)) as url:  # the level's service, running with its admin token
        live = replace(release, service_url=url, service_token=token, tags=tags)
        better = registry.register("better", name)
        promoted = run_cd(live, version=better, why="retrained on recent data")
        assert (promoted["decision"], promoted["stage"], promoted["champion"]) == ("promoted", "canary", better)
        assert promoted["canary"]["passed"] and promoted["tags"] == tags
        assert httpx.get(f"{url}/health", timeout=30).json()["model_version"] == better  # reloaded by the token

        noise = registry.register("noise", name)
        rejected = run_cd(live, version=noise)
        assert (rejected["decision"], rejected["stage"], rejected["champion"]) == ("rejected", "certification", better)

    for version in (better, noise):
        version_tags = client.get_model_version(name, version).tags
        assert {k: version_tags[k] for k in tags} == tags  # the evidence, on the candidate whatever the outcome
    assert client.get_model_version(name, better).tags["holdout_fingerprint"] == holdout.fingerprint
    assert {a: str(v) for a, v in client.get_registered_model(name).aliases.items()} == {CHAMPION: better}
    log = DeploymentLog(release.deploy_log)
    events = log.events(name, better)
    assert events[0].reason == "retrained on recent data" and events[0].alias == CANDIDATE
    assert [(e.alias, e.action) for e in events if e.action != "decision"] == [
        (CANDIDATE, "set"), (STAGING, "set"), (CANDIDATE, "remove"), (CHALLENGER, "set"), (CHAMPION, "set"),
        (CHALLENGER, "remove"), (STAGING, "remove"),
    ]  # fmt: skip
    assert events[-1].details["tags"] == tags and all(e.via == "tests" for e in events)
    assert log.champion_history(name) == ["1", better]
