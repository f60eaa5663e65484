"""Alias transitions, recorded: ``candidate`` -> ``staging`` -> ``challenger`` -> ``champion``, and rollback.

    deployer = Deployer(client, "trip-duration", DeploymentLog(Path("reports/deployments.jsonl")), via="cd flow")
    deployer.set_alias("staging", 7, "certified")      # any alias
    deployer.promote(7, "canary passed")               # champion: only a certified version
    deployer.rollback("by hand")                       # champion back to the one before

The registry's aliases say what is served (the service polls them). Every transition is recorded twice:

- as tags on the version it concerns: ``<alias>_at`` / ``<alias>_by`` / ``<alias>_why`` (when, who, why) and
  ``<alias>_removed_at`` / ``_why`` when it leaves;
- as one JSON line in the deployment log (``reports/deployments.jsonl``): time, model, version, alias,
  action (``set``, ``remove``, ``rollback``, ``decision``), the version it replaced, who, via what, why.

MLflow keeps no history of which version held an alias, so the log *is* the history: ``rollback`` replays it
to find the champion before the current one. Reading it never fails: a missing file is no events, a line
that is not an event (cut short by a crash, edited by hand) is skipped and counted (``DeploymentLog.skipped``).
A service shows the served versions' last events in ``/model`` with ``deployment_details``.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow import MlflowClient

if TYPE_CHECKING:
    from taxi.hotswap import Deployment

# taxi.tracking (alias_version, get_version) is imported where an alias is read or moved: it brings skops and
# scikit-learn along (seconds), which a `status` command and the service's /model, reading the log, do not need.

CANDIDATE, STAGING, CHALLENGER, CHAMPION = "candidate", "staging", "challenger", "champion"


class PromotionRefused(RuntimeError):
    """The champion would move to a version that is not certified, or there is nothing to roll back to."""


def actor() -> str:
    """Who acts: the CI user when a workflow runs the flow, else the local user at this host."""
    if os.environ.get("GITHUB_ACTOR"):
        return f"{os.environ['GITHUB_ACTOR']} (GitHub Actions)"
    try:
        user = getpass.getuser()
    except OSError:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Event:
    """One line of the deployment log."""

    model: str
    version: str | None
    alias: str | None
    action: str  # set | remove | rollback | decision
    reason: str
    previous: str | None = None  # the version that held the alias before
    by: str = field(default_factory=actor)
    via: str = "unknown"
    at: str = field(default_factory=now)
    details: dict[str, Any] = field(default_factory=dict)

    def what(self) -> str:
        """What happened, in a few words: ``@champion -> v2 (was v1)``, ``@staging removed from v2``,
        ``@champion rolled back to v1 (was v2)``, ``v3 rejected at certification``."""
        if self.action == "decision":
            stage = self.details.get("stage")
            return f"v{self.version} {self.details.get('decision', 'decided')}" + (f" at {stage}" if stage else "")
        if self.action == "remove":
            return f"@{self.alias} removed from v{self.version}"
        was = f" (was v{self.previous})" if self.previous and self.previous != self.version else ""
        verb = {"set": "->", "rollback": "rolled back to"}.get(self.action, self.action)
        return f"@{self.alias} {verb} v{self.version}{was}"

    def describe(self) -> str:
        """One line: when, what, who (via what), why."""
        return f"{self.at}  {self.what()}  by {self.by} via {self.via}: {self.reason}"


class DeploymentLog:
    """The deployment history of every model, one JSON line per event, appended."""

    def __init__(self, path: Path):
        self.path = path
        self.skipped = 0  # lines of the last read that were not events

    def append(self, event: Event) -> Event:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(event), sort_keys=True) + "\n")
        return event

    def events(self, model: str | None = None, version: str | int | None = None) -> list[Event]:
        """The events of ``model`` (and ``version``), oldest first; no file (or an unreadable one): none."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            lines = []
        events, self.skipped = [], 0
        for line in filter(str.strip, lines):
            event = _event(line)
            if event is None:
                self.skipped += 1
            elif (model is None or event.model == model) and (version is None or event.version == str(version)):
                events.append(event)
        return events

    def champion_history(self, model: str) -> list[str]:
        """The champions in order, as a stack: a promotion pushes its version, a rollback pops the top."""
        stack: list[str] = []
        for e in self.events(model):
            if e.alias != CHAMPION:
                continue
            if e.action == "set" and e.version is not None:
                stack.append(e.version)
            elif e.action == "rollback" and stack:
                stack.pop()
        return stack


def _event(line: str) -> Event | None:
    """One line of the log as an Event, or None when it is not one."""
    try:
        fields = json.loads(line)
        event = Event(**fields)
    except (ValueError, TypeError):  # not JSON, not an object, unknown or missing fields
        return None
    if not isinstance(event.details, dict) or not all(isinstance(v, str | None) for v in (event.version, event.at)):
        return None
    return event


class Deployer:
    """Moves the aliases of one registered model, recording each move (see module doc)."""

    def __init__(self, client: MlflowClient, name: str, log: DeploymentLog, via: str):
        self.client, self.name, self.log, self.via = client, name, log, via

    def version_of(self, alias: str) -> str | None:
        from taxi.tracking import alias_version

        found = alias_version(self.client, self.name, alias)
        return str(found.version) if found else None

    def tag(self, version: str | int, tags: Mapping[str, str]) -> None:
        """Set ``tags`` on ``version`` (values cut to the registry's 5000 characters)."""
        for key, value in tags.items():
            self.client.set_model_version_tag(self.name, str(version), key, str(value)[:5000])

    def set_alias(self, alias: str, version: str | int, reason: str, action: str = "set") -> Event:
        """Point ``@alias`` at ``version`` (which must exist), tag it and log the move."""
        from taxi.tracking import get_version

        target = str(get_version(self.client, self.name, version).version)
        previous = self.version_of(alias)
        self.client.set_registered_model_alias(self.name, alias, target)
        event = Event(self.name, target, alias, action, reason, previous=previous, via=self.via)
        self.tag(target, {f"{alias}_at": event.at, f"{alias}_by": f"{event.by} via {self.via}", f"{alias}_why": reason})
        return self.log.append(event)

    def remove_alias(self, alias: str, reason: str, version: str | int | None = None) -> Event | None:
        """Remove ``@alias`` (only from ``version`` when given), tag the version that held it and log it;
        None when there was nothing to remove."""
        current = self.version_of(alias)
        if current is None or (version is not None and current != str(version)):
            return None
        self.client.delete_registered_model_alias(self.name, alias)
        event = Event(self.name, current, alias, "remove", reason, previous=current, via=self.via)
        self.tag(current, {f"{alias}_removed_at": event.at, f"{alias}_removed_why": reason})
        return self.log.append(event)

    def decision(self, version: str | int, decision: str, stage: str, reason: str, **details: Any) -> Event:
        """Log the outcome of a CD run for ``version`` (promoted, rejected, rolled back), decided at ``stage``
        (certification, staging smoke test, canary, ...), and tag the version with it."""
        details = {"decision": decision, "stage": stage, **details}
        event = Event(self.name, str(version), None, "decision", reason, via=self.via, details=details)
        self.tag(
            str(version),
            {"deployment_decision": decision, "deployment_decision_stage": stage, "deployment_decision_why": reason},
        )
        return self.log.append(event)

    def promote(self, version: str | int, reason: str) -> Event:
        """``@champion`` -> ``version``, only if it is certified; the challenger alias leaves it if it had it."""
        from taxi.tracking import get_version

        found = get_version(self.client, self.name, version)
        if found.tags.get("certified") != "true":
            why = found.tags.get("failed_gates") or "never certified"
            raise PromotionRefused(
                f"version {found.version} is not certified ({why}): the champion stays v{self.version_of(CHAMPION)}"
            )
        event = self.set_alias(CHAMPION, found.version, reason)
        self.remove_alias(CHALLENGER, f"promoted to @{CHAMPION}", version=found.version)
        return event

    def rollback(self, reason: str) -> Event:
        """``@champion`` back to the champion before the current one (from the deployment log)."""
        history = self.log.champion_history(self.name)
        current = self.version_of(CHAMPION)
        if current is not None and history and history[-1] != current:
            raise PromotionRefused(
                f"{self.name}@{CHAMPION} is v{current} but the deployment log's last champion is v{history[-1]} "
                "(the alias was moved outside this log): promote the version you want explicitly"
            )
        if current is None or len(history) < 2:
            raise PromotionRefused(
                f"nothing to roll back to: {self.name}@{CHAMPION} has no earlier champion in {self.log.path} "
                f"(history: {history or 'empty'})"
            )
        return self.set_alias(CHAMPION, history[-2], reason, action="rollback")


def deployment_details(log: DeploymentLog, model: str, last: int = 10) -> Callable[[Deployment], dict[str, Any]]:
    """A service's ``/model`` ``deployments`` (``taxi.serving.create_app(model_details=...)``): for each version
    served (champion, challenger), its ``last`` events in the deployment log, oldest first; ``deployment_log``
    says where they come from. The log is read at each call; a missing or unreadable log gives empty lists and
    a line that is not an event is skipped, never a 500."""

    def details(deployment: Deployment) -> dict[str, Any]:
        served = [m.version for m in (deployment.champion, deployment.challenger) if m is not None]
        events = [e for e in log.events(model) if e.version in served]
        return {
            "deployments": {v: [asdict(e) for e in events if e.version == v][-last:] for v in served},
            "deployment_log": {"path": str(log.path), "skipped_lines": log.skipped},
        }

    return details
