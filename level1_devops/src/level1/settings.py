"""Level 1 settings: environment variables (prefix LEVEL1_) or a .env file in the level folder."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from taxi.loader import TLC_BASE_URL
from taxi.months import month_range
from taxi.serving import DEFAULT_MAX_BATCH


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

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def month_list(self) -> list[str]:
        return month_range(self.first_month, self.months)
