"""Alerts: what the policy decided, told to people: a log sink (always) and a webhook sink (when configured).

    notifier = Notifier(log_path=Path("reports/alerts.log"), webhook_url="https://hooks.slack.com/...")
    notifier.send(Alert(title="broken feed in 2024-08", text="...", severity="critical", window="2024-08"))
    notifier.delivered, notifier.failed     # counts per sink

The webhook receives Slack-compatible JSON (``{"text": ..., "blocks": [...]}``; Mattermost, Teams' and most chat
tools' incoming webhooks take the same ``text``). A webhook that is unreachable, slow or answers an error never
breaks the flow that alerts: the failure is logged (to the log sink, with the reason) and counted.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

logger = logging.getLogger("level4.alerts")

SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True)
class Alert:
    title: str
    text: str
    severity: str = "warning"
    window: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}; got {self.severity!r}")

    def slack(self) -> dict[str, Any]:
        """The webhook body: Slack's ``text`` (the fallback every tool shows) and a section block."""
        icon = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}[self.severity]
        line = f"{icon} *{self.title}*" + (f" ({self.window})" if self.window else "")
        return {
            "text": f"[{self.severity}] {self.title}: {self.text}",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f"{line}\n{self.text}"}}],
        }


class Notifier:
    """Sends each alert to the log file and, when ``webhook_url`` is set, to the webhook (see module doc)."""

    def __init__(self, log_path: Path, webhook_url: str | None = None, timeout: float = 5.0):
        self.log_path = log_path
        self.webhook_url = webhook_url or None
        self.timeout = timeout
        self.delivered: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()

    def send(self, alert: Alert) -> bool:
        """Deliver ``alert`` to every sink; True when every sink took it. Never raises for a sink's failure."""
        self._log({"alert": asdict(alert)})
        self.delivered["log"] += 1
        if not self.webhook_url:
            return True
        try:
            response = httpx.post(self.webhook_url, json=alert.slack(), timeout=self.timeout)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            self.failed["webhook"] += 1
            reason = f"{type(exc).__name__}: {exc}"[:300]
            logger.warning("alert %r not delivered to the webhook: %s", alert.title, reason)
            self._log({"webhook_failed": reason, "alert_title": alert.title})
            return False
        self.delivered["webhook"] += 1
        return True

    def _log(self, record: dict[str, Any]) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a") as f:
            f.write(json.dumps(record, default=str) + "\n")
