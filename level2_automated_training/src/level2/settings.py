"""Level 2 settings: environment variables (prefix LEVEL2_) or a .env file in the level folder.

The pipeline's own parameters live in params.yaml (versioned with the code, tracked by DVC); these
settings say where the platform is: the MLflow tracking server, the served alias, the service port.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

import taxi.settings
from taxi.trip import DEFAULT_MAX_BATCH


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEVEL2_", env_file=".env", extra="ignore")

    tracking_uri: str = Field("sqlite:///mlflow.db", description="MLflow tracking URI (embedded sqlite by default)")
    experiment: str = "trip-duration"
    model_name: str = "trip-duration"
    serving_alias: str = "production"
    params_file: Path = Path("params.yaml")
    max_batch: int = Field(DEFAULT_MAX_BATCH, ge=1)
    schedule_cron: str = Field("0 3 * * *", description="when the scheduled training runs (cron, UTC)")


def load_settings() -> Settings:
    """Settings from the environment / .env; a wrong value raises taxi.settings.SettingsError naming it."""
    return taxi.settings.load_settings(Settings)
