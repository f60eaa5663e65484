"""Level 3 settings: environment variables (prefix LEVEL3_) or a .env file in the level folder.

The pipeline's parameters and the certification thresholds live in params.yaml (versioned with the code,
tracked by DVC); these settings say where the platform is and how the service behaves: the MLflow tracking
server, the service port, how often it polls the registry, the admin token, the canary's traffic share.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

import taxi.settings
from taxi.trip import DEFAULT_MAX_BATCH


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEVEL3_", env_file=".env", extra="ignore", env_ignore_empty=True)

    tracking_uri: str = Field("sqlite:///mlflow.db", description="MLflow tracking URI (embedded sqlite by default)")
    experiment: str = "trip-duration"
    model_name: str = "trip-duration"
    params_file: Path = Field(Path("params.yaml"), description="pipeline parameters + certification thresholds")
    host: str = Field("127.0.0.1", description="the service's interface")
    port: int = Field(8003, ge=1, le=65535, description="the service's port")
    poll_interval: float = Field(2.0, gt=0, description="seconds between the service's polls of the registry aliases")
    admin_token: SecretStr = Field(
        SecretStr(""), description="bearer token of POST /admin/reload; empty = admin endpoints disabled"
    )
    challenger_share: float = Field(0.2, ge=0, le=1, description="share of traffic the challenger answers")
    max_batch: int = Field(DEFAULT_MAX_BATCH, ge=1, description="largest batch POST /predict accepts (413 above)")
    deploy_log: Path = Field(Path("reports/deployments.jsonl"), description="every alias transition, one JSON line")
    holdout_dir: Path = Field(Path("data/holdout"), description="the frozen holdout month every candidate is scored on")

    @property
    def token(self) -> str | None:
        """The admin token, or None when admin endpoints are disabled."""
        return self.admin_token.get_secret_value() or None


def load_settings() -> Settings:
    """Settings from the environment / .env; a wrong value raises taxi.settings.SettingsError naming it."""
    return taxi.settings.load_settings(Settings)
