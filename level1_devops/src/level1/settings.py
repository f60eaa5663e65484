"""Level 1 settings: environment variables (prefix LEVEL1_) or a .env file in the level folder."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

import taxi.settings
from taxi.loader import TLC_BASE_URL
from taxi.months import month_range, parse_month
from taxi.trip import DEFAULT_MAX_BATCH


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEVEL1_", env_file=".env", extra="ignore")

    # ingest: which months, from where
    source: Literal["synthetic", "tlc"] = "synthetic"
    first_month: str = "2024-01"
    months: int = Field(3, ge=1, description="months to ingest; the last one is held out for evaluation")
    scenario: Literal["stationary", "drift", "data_quality"] = "stationary"
    rows: int = Field(20_000, ge=100, description="rows per synthetic month")
    seed: int = 42
    tlc_base_url: str = TLC_BASE_URL

    # files
    data_dir: Path = Path("data")
    model_dir: Path = Path("models")
    handoff_dir: Path = Path("handoff")
    params_file: Path = Path("params.yaml")

    # service
    model_path: Path = Path("handoff/model.pkl")
    max_batch: int = Field(DEFAULT_MAX_BATCH, ge=1)

    @field_validator("first_month")
    @classmethod
    def _a_month(cls, value: str) -> str:
        parse_month(value)  # ValueError "month must look like YYYY-MM ..." -> a settings error naming the field
        return value

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def month_list(self) -> list[str]:
        return month_range(self.first_month, self.months)


def load_settings() -> Settings:
    """Settings from the environment / .env; a wrong value raises taxi.settings.SettingsError naming it."""
    return taxi.settings.load_settings(Settings)
