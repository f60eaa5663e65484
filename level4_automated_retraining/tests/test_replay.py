"""The replay's three outcomes, end to end on small data: a real DVC project in a temporary git repository, a real
MLflow registry, the service as a subprocess over HTTP, Evidently monitoring, the policy, level 3's release.

- stationary: no retraining all year (no false alarm);
- drift: retraining in the first window after the change, the retrained model promoted, RMSE back within 5 %
  of pre-drift the month after, 0 failed requests;
- data_quality: an alert and a quarantine, no retraining on the broken month, the champion unchanged.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from level4.replay import run_replay
from taxi.pipeline.prefect_server import without_heartbeats
from taxi.pipeline.scratch import scratch_project
from taxi.smoke import free_port

LEVEL = Path(__file__).resolve().parent.parent
# small months, a short training, test-sized certification and canary: the gates and the policy are the level's
SMALL = {
    "ingest.rows": 6000,
    "train.max_iter": 60,
    "holdout.rows": 3000,
    "certification.quality.min_trips": 150,
    "certification.no_regression.min_slice_trips": 100,
    "certification.operational.latency_calls": 10,
    "certification.operational.latency_rounds": 1,
    "canary.requests_per_variant": 60,
    "canary.min_ok_per_variant": 20,
    "canary.max_p95_ratio": 5.0,  # a busy test machine: this is about the loop, not about latency
}
TRIPS = 3000  # per month of live traffic (a retraining is certified on its last 7 days: ~650 trips)


@pytest.fixture
def project(tmp_path, monkeypatch):
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    for key in [k for k in env if k.startswith("LEVEL4_")]:
        monkeypatch.delenv(key)  # the project's own defaults: its registry, store and reports
    monkeypatch.setenv("PATH", env["PATH"])
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / ".prefect"))
    files = ("dvc.yaml", "params.yaml", "policy.yaml", ".dvcignore", ".gitignore")
    project = scratch_project(LEVEL, tmp_path / "repo", SMALL, name="level4", env=env, files=files)
    monkeypatch.chdir(project)
    with without_heartbeats():  # as `level4 replay` runs its flows (its settings read now: PREFECT_HOME above)
        yield project


def decisions(project: Path) -> list[dict]:
    lines = (project / "reports" / "decisions.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_stationary_year_never_retrains(project):
    replay = run_replay(project, "stationary", free_port(), months=["2024-05", "2024-06", "2024-07"], trips=TRIPS)
    assert [m.actions for m in replay.months] == [[], [], []]
    assert {m.champion_after for m in replay.months} == {"v1"} and replay.failed_requests == 0
    assert all(d["rule"] is None for d in decisions(project))
    assert (project / "reports" / "replay" / "timeline.png").stat().st_size > 10_000


def test_drift_is_retrained_certified_and_promoted_and_the_error_recovers(project):
    replay = run_replay(project, "drift", free_port(), months=["2024-06", "2024-07", "2024-08"], trips=TRIPS)
    before, changed, after = replay.months
    assert before.actions == [] and before.champion_after == "v1"
    assert "retrain" in changed.actions and changed.outcome == "v2 promoted" and changed.champion_after == "v2"
    assert after.served == "v2" and after.rmse <= 1.05 * before.rmse, replay.months
    assert after.actions == [], "the retrained champion is judged healthy the month after"
    assert replay.failed_requests == 0
    [retrained] = [d for d in decisions(project) if "retrain" in d["actions"]]
    assert retrained["window"] == "2024-07" and retrained["training_months"] == ["2024-07"]
    assert retrained["outcome"]["release"]["decision"] == "promoted"
    events = (project / "reports" / "deployments.jsonl").read_text()
    assert '"via": "policy: ' in events  # every alias move of the retraining says the policy made it


def test_broken_feed_is_quarantined_not_retrained_on(project):
    replay = run_replay(project, "data_quality", free_port(), months=["2024-06", "2024-07"], trips=TRIPS)
    good, broken = replay.months
    assert good.actions == [] and broken.quality != "ok"
    assert broken.actions == ["alert", "quarantine"] and broken.outcome == ""
    assert broken.champion_after == "v1"  # no retraining, no promotion
    [decision] = [d for d in decisions(project) if d["actions"]]
    assert decision["rule"] == "broken_feed" and decision["quarantined"] == ["2024-07"]
    alert = json.loads((project / "reports" / "alerts.log").read_text().splitlines()[0])["alert"]
    assert alert["severity"] == "critical" and "quarantined" in alert["text"]
