"""``make orchestrate``: the level's flows as Prefect deployments on a long-lived Prefect server, event-driven.

- ``watch/monthly``: monitoring + the policy on the month that just ended, on a cron schedule (the 1st of each
  month); run it now with ``prefect deployment run watch/monthly``;
- ``retrain/on-breach``: no schedule; its **trigger** (a Prefect automation made from a
  ``DeploymentEventTrigger``) starts it when the ``watch`` flow emits ``taxi.policy.retrain``, with the
  policy's decision from the event's payload as its parameters.

The server is the one at PREFECT_API_URL, or a local one started on a loopback port for as long as this runs
(``taxi.pipeline.prefect_server``); Ctrl-C stops the runner, then the server. Prefect's temporary server (what
a flow run starts when no server is configured) never evaluates automations: without ``make orchestrate`` the
``watch`` flow calls the retraining itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from level4.flows import RETRAIN_DEPLOYMENT, RETRAIN_EVENT

WATCH_CRON = "0 6 1 * *"  # 06:00 on the 1st: the month before is complete


def retrain_trigger() -> Any:
    """Start ``retrain/on-breach`` on each ``taxi.policy.retrain`` event, with the event's decision."""
    from prefect.events import DeploymentEventTrigger

    return DeploymentEventTrigger(
        name="the policy asks for a retraining",
        expect={RETRAIN_EVENT},
        match={"prefect.resource.id": "taxi.window.*"},
        parameters={
            "project_dir": "{{ event.payload.project_dir }}",
            "decision": "{{ event.payload.decision }}",
            "service_url": "{{ event.payload.service_url }}",
        },
    )


def deployments(project: Path, service_url: str | None) -> list[Any]:
    """The two deployments (see module doc), not yet applied to a server."""
    from level4.flows import retrain, watch

    return [
        watch.to_deployment(
            name="monthly", cron=WATCH_CRON, parameters={"project_dir": str(project), "service_url": service_url}
        ),
        retrain.to_deployment(name=RETRAIN_DEPLOYMENT.split("/")[1], triggers=[retrain_trigger()]),
    ]


def orchestrate(
    project: Path, port: int, home: Path, service_url: str | None, echo: Callable[[str], None] = print
) -> None:
    from taxi.pipeline.prefect_server import serve

    def started(api_url: str) -> None:
        echo(f"serving 'watch/monthly' (cron '{WATCH_CRON}') and '{RETRAIN_DEPLOYMENT}' (trigger: {RETRAIN_EVENT})")
        echo(f"  watch a month now: PREFECT_API_URL={api_url} prefect deployment run watch/monthly")
        echo(f"  automations: {api_url.removesuffix('/api')}/automations; Ctrl-C stops")

    serve(lambda: deployments(project, service_url), "level4", port, home, echo, started)
