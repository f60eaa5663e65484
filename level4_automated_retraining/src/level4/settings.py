"""Level 4 settings: environment variables (prefix LEVEL4_) or a .env file in the level folder.

Level 3's settings (``taxi.service_settings``: the registry, the service, hot swap) plus what this level adds:
where predictions and feedback are kept and how the prediction log behaves, and where the monitoring reports
and the Evidently workspace go. The pipeline's parameters and the monitoring thresholds live in params.yaml.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
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
    log_queue_rows: int = Field(
        100_000, ge=1, description="predictions waiting to be written at most; more are dropped (and counted)"
    )
    log_batch_rows: int = Field(5_000, ge=1, description="predictions written in one transaction at most")
    reports_dir: Path = Field(Path("reports/monitoring"), description="the monitoring reports (HTML + JSON)")
    workspace_dir: Path = Field(Path("evidently_workspace"), description="the local Evidently workspace (its UI)")
    project_name: str = Field("trip-duration monitoring", description="the Evidently project of the reports")


def load_settings() -> Settings:
    """Settings from the environment / .env; a wrong value raises taxi.settings.SettingsError naming it."""
    return taxi.settings.load_settings(Settings)
