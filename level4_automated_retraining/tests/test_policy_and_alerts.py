"""The retraining policy (pure: monitoring results in, decisions out) and the alert sinks (a real local webhook)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from level4.alerts import Alert, Notifier
from level4.monitor import MonitoringResult, QualityFailure
from level4.policy import (
    Action,
    Decision,
    DecisionLog,
    PolicyError,
    decide,
    load_policy,
    pipeline_overrides,
)

LEVEL = Path(__file__).resolve().parent.parent
POLICY = load_policy(LEVEL / "policy.yaml")
CHAMPION_RMSE = 5.8


def window(month: str, drift: float = 0.0, rmse: float | None = 5.9, quality: tuple[str, ...] = (), rows=3000):
    return MonitoringResult(
        window=month, start=None, end=None, champion_version="1", rows=rows, rows_with_feedback=2800,
        drift_share=drift, drifted_columns=["pickup_borough", "trip_distance"][: int(drift * 6)],
        dataset_drift=drift >= 0.5, quality_failures=[QualityFailure(check=q, description=q) for q in quality],
        rmse=rmse, mae=None if rmse is None else rmse * 0.7,
    )  # fmt: skip


def replay(results: list[MonitoringResult], policy=POLICY) -> list[Decision]:
    history: list[Decision] = []
    for result in results:
        history.append(decide(policy, result, CHAMPION_RMSE, history))
    return history


def test_a_quiet_year_decides_nothing():
    decisions = replay([window(f"2024-{m:02d}") for m in range(3, 13)])
    assert all(d.actions == [] and d.rule is None for d in decisions)
    assert decisions[0].reason == "no rule fired"


def test_drift_retrains_on_the_newest_months_then_cools_down():
    results = [window("2024-06"), window("2024-07", drift=0.67, rmse=7.0), window("2024-08", drift=0.67, rmse=7.0)]
    quiet, drifted, after = replay(results)
    assert quiet.actions == []
    assert drifted.rule == "error_regression" and drifted.actions == [Action.retrain, Action.alert]
    assert set(drifted.fired) == {"error_regression", "input_drift"}
    assert drifted.training_months == ["2024-07"]
    assert "7.00 min is 1.21 x the champion's certified 5.80" in drifted.reason
    # the next window breaches again (say the retrained candidate was rejected): alert, but no retraining yet
    assert after.actions == [Action.alert] and after.held_back.startswith("cooldown: retrained on 2024-07")


def test_a_broken_feed_is_quarantined_and_never_retrained_on():
    results = [window("2024-06"), window("2024-07", drift=0.67, rmse=8.0, quality=("distance_unit",))]
    _, broken = replay(results)
    assert broken.rule == "broken_feed" and broken.actions == [Action.alert, Action.quarantine]
    assert broken.quarantined == ["2024-07"] and broken.training_months == []
    # later, a drift on a good month retrains on the newest months that are not quarantined
    policy = POLICY.model_copy(update={"retrain": POLICY.retrain.model_copy(update={"months": 2})})
    decisions = replay([*results, window("2024-08", drift=0.67, rmse=7.5)], policy)
    assert decisions[-1].training_months == ["2024-06", "2024-08"]
    assert pipeline_overrides(decisions[-1]) == {
        "ingest.first_month": "2024-06", "ingest.months": 3, "ingest.exclude_months": ["2024-07"],
    }  # fmt: skip


def test_minimum_evidence_and_consecutive_windows(tmp_path):
    text = (LEVEL / "policy.yaml").read_text().replace("consecutive_windows: 1", "consecutive_windows: 2", 1)
    (tmp_path / "policy.yaml").write_text(text)
    policy = load_policy(tmp_path / "policy.yaml")
    few = window("2024-07", drift=0.67, rmse=None, rows=100)  # too few rows for input_drift, no RMSE
    first, second, third = replay([few, window("2024-08", rmse=7.0), window("2024-09", rmse=7.0)], policy)
    assert first.actions == [] and first.fired == []
    assert second.actions == [] and second.fired == ["error_regression"]  # one window is not two in a row
    assert third.rule == "error_regression" and third.retrain


def test_the_decision_log_is_the_policys_memory(tmp_path):
    log = DecisionLog(tmp_path / "decisions.jsonl")
    for decision in replay([window("2024-07", drift=0.67, rmse=7.0)]):
        log.append(decision, outcome="promoted v2")
    again = decide(POLICY, window("2024-08", drift=0.67, rmse=7.0), CHAMPION_RMSE, log.read())
    assert again.held_back.startswith("cooldown")
    assert json.loads(log.path.read_text())["outcome"] == "promoted v2"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("actions: [retrain, alert]", "actions: [retrian, alert]"),
            "rules[error_regression].actions[0]: Input should be 'retrain', 'alert' or 'quarantine' (got 'retrian')",
        ),
        (
            ("above: 1.10", "above: -1"),
            "rules[error_regression].above: Input should be greater than or equal to 0 (got -1)",
        ),
        (("above: 0.5 ", "above: 1.5 "), "rules[input_drift]: drift_share is a share: 'above' must be below 1"),
        (("signal: rmse_ratio", "signal: rmse"), "rules[error_regression].signal: Input should be"),
        (("cooldown_windows: 2", "cooldown_window: 2"), "retrain.cooldown_window: Extra inputs are not permitted"),
        (("rules:", "rules: ["), "not valid YAML at line"),
    ],
)
def test_a_wrong_policy_file_is_one_clear_line(tmp_path, change, message):
    path = tmp_path / "policy.yaml"
    path.write_text((LEVEL / "policy.yaml").read_text().replace(*change, 1))
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert str(caught.value).startswith(f"{path}: ")


def test_a_missing_policy_file_says_so(tmp_path):
    with pytest.raises(PolicyError, match="cannot read it"):
        load_policy(tmp_path / "nope.yaml")


# ---- alerts ----


class Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []
    status = 200

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append({"path": self.path, "type": self.headers["Content-Type"], "body": json.loads(body)})
        self.send_response(Receiver.status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Receiver.received, Receiver.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/ops"
    server.shutdown()
    server.server_close()


ALERT = Alert(title="broken feed", text="distance_unit: median 1.6 x usual", severity="critical", window="2024-08")


def test_the_webhook_gets_slack_json_and_the_log_keeps_the_alert(tmp_path, receiver):
    notifier = Notifier(tmp_path / "alerts.log", webhook_url=receiver)
    assert notifier.send(ALERT) is True
    [got] = Receiver.received
    assert got["path"] == "/hooks/ops" and got["type"] == "application/json"
    assert got["body"]["text"] == "[critical] broken feed: distance_unit: median 1.6 x usual"
    assert "*broken feed* (2024-08)" in got["body"]["blocks"][0]["text"]["text"]
    assert json.loads((tmp_path / "alerts.log").read_text())["alert"]["window"] == "2024-08"
    assert notifier.delivered == {"log": 1, "webhook": 1} and not notifier.failed


@pytest.mark.parametrize("fault", ["refused", "error status"])
def test_a_failing_webhook_is_logged_and_counted_never_raised(tmp_path, receiver, fault):
    if fault == "refused":
        url = "http://127.0.0.1:9/hooks/ops"  # the discard port: nothing listens
    else:
        Receiver.status, url = 500, receiver
    notifier = Notifier(tmp_path / "alerts.log", webhook_url=url, timeout=2)
    assert notifier.send(ALERT) is False
    lines = [json.loads(line) for line in (tmp_path / "alerts.log").read_text().splitlines()]
    assert lines[0]["alert"]["title"] == "broken feed" and "webhook_failed" in lines[1]
    assert notifier.failed == {"webhook": 1} and notifier.delivered == {"log": 1}


def test_an_alert_needs_a_known_severity():
    with pytest.raises(ValueError, match="severity must be one of info, warning, critical"):
        Alert(title="x", text="y", severity="panic")
