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
to find the champion before the current one.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlflow import MlflowClient

from taxi.tracking import alias_version, get_version

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
    via: str = "level3"
    at: str = field(default_factory=now)
    details: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        if self.action == "decision":
            return f"{self.at}  v{self.version} {self.details.get('decision', '?')}: {self.reason}"
        was = f" (was v{self.previous})" if self.previous else ""
        verb = {"set": "->", "rollback": "rolled back to", "remove": "removed from"}.get(self.action, self.action)
        return f"{self.at}  @{self.alias} {verb} v{self.version}{was}  by {self.by} via {self.via}: {self.reason}"


class DeploymentLog:
    """The deployment history of every model, one JSON line per event, appended."""

    def __init__(self, path: Path):
        self.path = path

    def append(self, event: Event) -> Event:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(event), sort_keys=True) + "\n")
        return event

    def events(self, model: str | None = None, version: str | int | None = None) -> list[Event]:
        if not self.path.exists():
            return []
        events = [Event(**json.loads(line)) for line in self.path.read_text(encoding="utf-8").splitlines() if line]
        return [
            e for e in events if (model is None or e.model == model) and (version is None or e.version == str(version))
        ]

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


class Deployer:
    """Moves the aliases of one registered model, recording each move (see module doc)."""

    def __init__(self, client: MlflowClient, name: str, log: DeploymentLog, via: str = "level3"):
        self.client, self.name, self.log, self.via = client, name, log, via

    def version_of(self, alias: str) -> str | None:
        found = alias_version(self.client, self.name, alias)
        return str(found.version) if found else None

    def _tag(self, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(self.name, version, key, value[:5000])

    def set_alias(self, alias: str, version: str | int, reason: str, action: str = "set") -> Event:
        """Point ``@alias`` at ``version`` (which must exist), tag it and log the move."""
        target = str(get_version(self.client, self.name, version).version)
        previous = self.version_of(alias)
        self.client.set_registered_model_alias(self.name, alias, target)
        event = Event(self.name, target, alias, action, reason, previous=previous, via=self.via)
        self._tag(
            target, {f"{alias}_at": event.at, f"{alias}_by": f"{event.by} via {self.via}", f"{alias}_why": reason}
        )
        return self.log.append(event)

    def remove_alias(self, alias: str, reason: str) -> Event | None:
        """Remove ``@alias`` (None if it was not set), tag the version that held it and log it."""
        current = self.version_of(alias)
        if current is None:
            return None
        self.client.delete_registered_model_alias(self.name, alias)
        event = Event(self.name, current, alias, "remove", reason, previous=current, via=self.via)
        self._tag(current, {f"{alias}_removed_at": event.at, f"{alias}_removed_why": reason})
        return self.log.append(event)

    def decision(self, version: str | int, decision: str, reason: str, **details: Any) -> Event:
        """Log the outcome of a CD run for ``version`` (promoted, rejected, rolled back) and tag the version."""
        event = Event(
            self.name, str(version), None, "decision", reason, via=self.via, details={"decision": decision, **details}
        )
        self._tag(str(version), {"deployment_decision": decision, "deployment_decision_why": reason})
        return self.log.append(event)

    def promote(self, version: str | int, reason: str) -> Event:
        """``@champion`` -> ``version``, only if it is certified; the challenger alias leaves it if it had it."""
        found = get_version(self.client, self.name, version)
        if found.tags.get("certified") != "true":
            why = found.tags.get("failed_gates") or "never certified"
            raise PromotionRefused(
                f"version {found.version} is not certified ({why}): the champion stays v{self.version_of(CHAMPION)}"
            )
        event = self.set_alias(CHAMPION, found.version, reason)
        if self.version_of(CHALLENGER) == str(found.version):
            self.remove_alias(CHALLENGER, f"promoted to {CHAMPION}")
        return event

    def rollback(self, reason: str) -> Event:
        """``@champion`` back to the champion before the current one (from the deployment log)."""
        history = self.log.champion_history(self.name)
        current = self.version_of(CHAMPION)
        if current is not None and history and history[-1] != current:
            raise PromotionRefused(
                f"{self.name}@{CHAMPION} is v{current} but the deployment log's last champion is v{history[-1]} "
                "(the alias was moved outside level3): promote the version you want explicitly"
            )
        if current is None or len(history) < 2:
            raise PromotionRefused(
                f"nothing to roll back to: {self.name}@{CHAMPION} has no earlier champion in {self.log.path} "
                f"(history: {history or 'empty'})"
            )
        return self.set_alias(CHAMPION, history[-2], reason, action="rollback")
