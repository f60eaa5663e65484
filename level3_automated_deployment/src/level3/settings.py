"""Level 3 settings: environment variables (prefix LEVEL3_) or a .env file in the level folder.

The pipeline's parameters and the certification thresholds live in params.yaml (versioned with the code,
tracked by DVC); these settings say where the platform is and how the service behaves: the MLflow tracking
server, the service port, how often it polls the registry, the admin token, the canary's traffic share.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

import taxi.settings
from taxi.service_settings import HotSwapServiceFields


class Settings(BaseSettings, HotSwapServiceFields):
    """The hot-swapping service's settings (``taxi.service_settings``) + where level 3 records its decisions."""

    model_config = SettingsConfigDict(env_prefix="LEVEL3_", env_file=".env", extra="ignore", env_ignore_empty=True)

    params_file: Path = Field(Path("params.yaml"), description="pipeline parameters + certification thresholds")
    port: int = Field(8003, ge=1, le=65535, description="the service's port")
    deploy_log: Path = Field(Path("reports/deployments.jsonl"), description="every alias transition, one JSON line")
    holdout_dir: Path = Field(Path("data/holdout"), description="the frozen holdout month every candidate is scored on")


def load_settings() -> Settings:
    """Settings from the environment / .env; a wrong value raises taxi.settings.SettingsError naming it."""
    return taxi.settings.load_settings(Settings)
