"""Level 4 settings: environment variables (prefix LEVEL4_) or a .env file in the level folder.

Level 3's settings (``taxi.service_settings``: the registry, the service, hot swap; the deployment log, the
holdout folder and the certification reports of level 3's release) plus what this level adds: where predictions
and feedback are kept and how the prediction log behaves, where the monitoring reports and the Evidently
workspace go, the policy file, the decision log and where alerts go. The pipeline's parameters, the monitoring
thresholds, the certification gates and the canary live in params.yaml; the retraining rules in policy.yaml.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

import taxi.settings
from taxi.service_settings import HotSwapServiceFields


class Settings(BaseSettings, HotSwapServiceFields):
    model_config = SettingsConfigDict(env_prefix="LEVEL4_", env_file=".env", extra="ignore", env_ignore_empty=True)

    port: int = Field(8004, ge=1, le=65535, description="the service's port")
    prediction_store: str = Field(
        "sqlite:///data/predictions.db",
        description="SQLAlchemy URL of the prediction store (a relative sqlite path is taken in the level folder); "
        "postgresql+psycopg://user:password@host/db for PostgreSQL",
    )
    prediction_log: bool = Field(
        True,
        description="log every prediction to the prediction store; false: level 3's service (no store opened, no "
        "POST /feedback, no prediction-log metrics)",
    )
    feedback_token: SecretStr = Field(
        SecretStr(""),
        description="bearer token POST /feedback requires (feedback decides what the model is retrained on); "
        "empty = open to whoever can reach the service, so `level4 serve` refuses a non-loopback host without one",
    )
    log_queue_rows: int = Field(
        100_000, ge=1, description="predictions waiting to be written at most; more are dropped (and counted)"
    )
    log_batch_rows: int = Field(5_000, ge=1, description="predictions written in one transaction at most")
    reports_dir: Path = Field(Path("reports/monitoring"), description="the monitoring reports (HTML + JSON)")
    workspace_dir: Path = Field(Path("evidently_workspace"), description="the local Evidently workspace (its UI)")
    project_name: str = Field("trip-duration monitoring", description="the Evidently project of the reports")
    deploy_log: Path = Field(Path("reports/deployments.jsonl"), description="every alias transition, one JSON line")
    holdout_dir: Path = Field(Path("data/holdout"), description="the frozen holdout month of the first release")
    certification_dir: Path = Field(Path("reports/certification"), description="certification reports, v<N>.md")
    policy_file: Path = Field(Path("policy.yaml"), description="the retraining policy: signals -> actions")
    decision_log: Path = Field(Path("reports/decisions.jsonl"), description="the policy's decisions, one JSON line")
    alert_log: Path = Field(Path("reports/alerts.log"), description="every alert, one JSON line (the log sink)")
    alert_webhook: SecretStr = Field(
        SecretStr(""), description="Slack-compatible incoming-webhook URL for alerts; empty = the log sink only"
    )
    replay_dir: Path = Field(Path("reports/replay"), description="the replay's timeline (table, CSV, PNG)")

    @property
    def webhook(self) -> str | None:
        return self.alert_webhook.get_secret_value() or None


def load_settings() -> Settings:
    """Settings from the environment / .env; a wrong value raises taxi.settings.SettingsError naming it."""
    return taxi.settings.load_settings(Settings)
