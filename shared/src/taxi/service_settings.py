"""The settings every hot-swapping service level has (levels 3 and 4), as fields a level's settings inherit.

    class Settings(BaseSettings, HotSwapServiceFields):
        model_config = SettingsConfigDict(env_prefix="LEVEL4_", env_file=".env", extra="ignore", env_ignore_empty=True)
        port: int = Field(8004, ge=1, le=65535, description="the service's port")   # a level's own default
        ...                                                                          # and what the level adds

Plain pydantic (no pydantic-settings here): the level's class reads them from its environment with its prefix.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr

from taxi.body_limit import BODY_HEADROOM, BYTES_PER_TRIP, DEFAULT_BODY_TIMEOUT
from taxi.trip import DEFAULT_MAX_BATCH


class HotSwapServiceFields(BaseModel):
    """Where the registry is, what the service serves and how it swaps (see each field's description)."""

    tracking_uri: str = Field("sqlite:///mlflow.db", description="MLflow tracking URI (embedded sqlite by default)")
    experiment: str = "trip-duration"
    model_name: str = "trip-duration"
    params_file: Path = Field(Path("params.yaml"), description="the pipeline's parameters and the level's thresholds")
    host: str = Field("127.0.0.1", description="the service's interface")
    port: int = Field(8000, ge=1, le=65535, description="the service's port")
    poll_interval: float = Field(2.0, gt=0, description="seconds between the service's polls of the registry aliases")
    admin_token: SecretStr = Field(
        SecretStr(""), description="bearer token of POST /admin/reload; empty = admin endpoints disabled"
    )
    challenger_share: float = Field(0.2, ge=0, le=1, description="share of traffic the challenger answers")
    wait_for_champion: bool = Field(
        False,
        description="start even when the registry has no champion yet (or cannot be reached): 503 with the reason "
        "until a poll loads one; false: that is an error at start",
    )
    max_batch: int = Field(DEFAULT_MAX_BATCH, ge=1, description="largest batch POST /predict accepts (413 above)")
    max_body_bytes: int | None = Field(
        None,
        ge=1,
        description="largest request body in bytes, on every route (413 above, checked before the body is read "
        f"whole); empty = derived from max_batch: {BYTES_PER_TRIP} bytes a trip + {BODY_HEADROOM} "
        f"({BODY_HEADROOM + BYTES_PER_TRIP * DEFAULT_MAX_BATCH} for {DEFAULT_MAX_BATCH} trips)",
    )
    body_timeout: float = Field(
        DEFAULT_BODY_TIMEOUT, gt=0, description="seconds a client has to send a whole request body (408 after)"
    )

    @property
    def token(self) -> str | None:
        """The admin token, or None when admin endpoints are disabled."""
        return self.admin_token.get_secret_value() or None
