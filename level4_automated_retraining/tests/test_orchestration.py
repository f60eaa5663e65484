"""The event-driven path: the policy's retraining request is a Prefect event, and the `retrain/on-breach`
deployment's trigger (a real automation on Prefect's test server) starts a retraining run with the decision."""

from __future__ import annotations

import time

import pytest

from level4.flows import RETRAIN_DEPLOYMENT, request_retraining, retraining_is_event_driven
from level4.orchestrate import deployments
from level4.policy import Action, Decision

DECISION = Decision(
    window="2024-07", month="2024-07", rule="error_regression", actions=[Action.retrain, Action.alert],
    reason="RMSE 7.09 min is 1.22 x the champion's certified 5.81 (limit 1.10 x)", training_months=["2024-07"],
)  # fmt: skip


@pytest.fixture(scope="module")
def harness():
    from prefect.testing.utilities import prefect_test_harness

    from taxi.pipeline.prefect_server import without_heartbeats

    with prefect_test_harness(), without_heartbeats():  # heartbeats off as in `level4 watch`
        yield


def test_without_the_deployment_the_watch_flow_retrains_directly(harness):
    assert retraining_is_event_driven() is False  # a server, but nobody serves retrain/on-breach


def test_the_retraining_event_starts_the_deployment_with_the_decision(harness, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    watch, retrain = deployments(tmp_path, service_url=None)
    assert watch.schedules and not retrain.schedules  # the watch is scheduled; the retraining waits for an event
    deployment_id = retrain.apply()  # the deployment and its trigger's automation, on the server
    assert retraining_is_event_driven() is True

    request_retraining(tmp_path, DECISION, "http://127.0.0.1:8004")
    runs = []
    deadline = time.monotonic() + 90
    ours = DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
    with get_client(sync_client=True) as client:
        assert client.read_deployment_by_name(RETRAIN_DEPLOYMENT).id == deployment_id
        while not runs and time.monotonic() < deadline:
            time.sleep(0.5)
            runs = client.read_flow_runs(deployment_filter=ours)
    assert len(runs) == 1, "the automation did not start a retraining run"
    parameters = runs[0].parameters
    assert parameters["project_dir"] == str(tmp_path) and parameters["service_url"] == "http://127.0.0.1:8004"
    assert Decision.model_validate(parameters["decision"]) == DECISION  # the decision arrives whole, typed
