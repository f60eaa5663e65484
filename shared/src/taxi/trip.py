"""The request model every API uses: one trip, as a client knows it at pickup time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import pandas as pd
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    field_validator,
)
from pydantic_core import core_schema

from taxi.schema import INPUT_COLUMNS
from taxi.zones import N_ZONES

MAX_TRIP_MILES = 200.0
DEFAULT_MAX_BATCH = 1000  # trips in one POST /predict (413 above); here so settings need not import the web stack
NEW_YORK = ZoneInfo("America/New_York")
EARLIEST, LATEST = datetime(2000, 1, 1), datetime(2100, 1, 1)  # plausible pickups, well inside pandas' range

# The pickup times Trip accepts, as the OpenAPI states them (a JSON Schema / ECMA 262 pattern, [0-9] rather than \d:
# Python's \d also matches non-ASCII digits): a calendar date written 2000-01-01 .. 2099-12-31, optionally a time
# (hh:mm, :ss, a fraction) and a UTC offset (Z or +-hh:mm / +-hhmm) -- the ISO 8601 forms pydantic parses, within
# Trip's range. The range applies to the date as written; an aware time is then converted to New York time.
_DATE = (
    "20[0-9]{2}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    "|02-(?:0[1-9]|1[0-9]|2[0-8]))|20(?:[02468][048]|[13579][26])-02-29"
)
_HOUR, _MINUTE = "(?:[01][0-9]|2[0-3])", "[0-5][0-9]"
_TIME = f"[Tt _]{_HOUR}:{_MINUTE}(?::{_MINUTE}(?:[.,][0-9]+)?)?(?:[Zz]|[+-]{_HOUR}:?{_MINUTE})?"
PICKUP_PATTERN = f"^(?:{_DATE})(?:{_TIME})?$"


def _whole(value: float) -> int:
    """74.0 -> 74; 74.5 (or 2.6e-42, which pydantic's ``multiple_of=1`` lets through as a rounding error) fails."""
    if not value.is_integer():
        raise ValueError("not a whole number")
    return int(value)


@dataclass(frozen=True)
class JsonInteger:
    """``Annotated[int, JsonInteger(ge, le)]``: an integer ``ge``..``le`` as the OpenAPI (JSON Schema) means one, a
    JSON number without a fraction (74 or 74.0) -- not ``true`` or ``"74"``, which pydantic's lax ``int`` would take.

    Validated by pydantic-core alone (a float costs one Python call, ``_whole``), so ``taxi.serving``'s
    ``TripRow`` keeps validating batches without Python. One error a field: ``int_type``, or the range's."""

    ge: int
    le: int | None = None

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        whole = core_schema.no_info_after_validator_function(_whole, core_schema.float_schema(strict=True))
        number = core_schema.union_schema([core_schema.int_schema(strict=True), whole], custom_error_type="int_type")
        return core_schema.chain_schema([number, core_schema.int_schema(ge=self.ge, le=self.le)])

    def __get_pydantic_json_schema__(self, schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        bounds = {"minimum": self.ge} | ({"maximum": self.le} if self.le is not None else {})
        return {"type": "integer", **bounds}


@dataclass(frozen=True)
class IsoTime:
    """``Annotated[datetime, IsoTime(), ...]``: a datetime given as a string matching ``PICKUP_PATTERN`` (or, from
    Python, a datetime) -- not a number or a numeric string, which pydantic would read as Unix time. Checked by
    pydantic-core alone (its regex), before pydantic parses the string; one error naming the rule."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        given = core_schema.union_schema(
            [core_schema.is_instance_schema(datetime), core_schema.str_schema(strict=True, pattern=PICKUP_PATTERN)],
            custom_error_type="datetime_pattern",
            custom_error_message="Input should be an ISO 8601 datetime string (New York time, or with a UTC offset) "
            f"dated between {EARLIEST:%Y-%m-%d} and {LATEST - timedelta(days=1):%Y-%m-%d}",
        )
        return core_schema.chain_schema([given, handler(source)])

    def __get_pydantic_json_schema__(self, schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        """The pattern says what is accepted (``format: date-time`` would promise any RFC 3339 time, of any year,
        and require the UTC offset that is optional here)."""
        json_schema = handler(schema)
        json_schema.pop("format", None)
        return json_schema | {"type": "string", "pattern": PICKUP_PATTERN}


def new_york_time(value: datetime) -> datetime:
    """A parsed ``IsoTime`` -> a naive New York local time, as TLC times are: an aware time is converted to New
    York time. The range applies to the time as written (as ``PICKUP_PATTERN`` states it; this checks a datetime
    given from Python)."""
    written = value.replace(tzinfo=None) if value.tzinfo else value
    if not EARLIEST <= written < LATEST:
        raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    if value.tzinfo:  # written 2000..2099: always within datetime's range in New York time
        value = value.astimezone(NEW_YORK).replace(tzinfo=None)
    return value


# the pickup time's rules for another field (e.g. a dropoff time): Annotated[NewYorkTime, Field(description=...)]
NewYorkTime = Annotated[datetime, IsoTime(), AfterValidator(new_york_time)]


class Trip(BaseModel):
    """A trip to predict the duration of. Field names are the TLC column names."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "PULocationID": 74,
                    "DOLocationID": 42,
                    "trip_distance": 1.8,
                    "lpep_pickup_datetime": "2024-03-05T08:15:00",
                    "passenger_count": 1,
                }
            ]
        }
    )

    # numbers as the OpenAPI states them: JSON numbers (not true/false, not "74"), integers without a fraction
    PULocationID: Annotated[int, JsonInteger(1, N_ZONES)] = Field(description="pickup TLC zone id (1..265)")
    DOLocationID: Annotated[int, JsonInteger(1, N_ZONES)] = Field(description="dropoff TLC zone id (1..265)")
    trip_distance: float = Field(
        ge=0, le=MAX_TRIP_MILES, allow_inf_nan=False, strict=True, description="trip distance in miles (0..200)"
    )
    lpep_pickup_datetime: Annotated[datetime, IsoTime()] = Field(
        description="pickup time, an ISO 8601 date-time string dated 2000-01-01 .. 2099-12-31: local New York "
        "time, or with a UTC offset (converted to New York time). Not a number."
    )
    passenger_count: Annotated[int, JsonInteger(0, 9)] | None = Field(default=None, description="passengers (optional)")

    @field_validator("lpep_pickup_datetime")
    @classmethod
    def _new_york_local(cls, value: datetime) -> datetime:
        """``new_york_time``. A decorator (not ``NewYorkTime``'s annotation): ``taxi.serving`` validates batches
        without Python (``TripRow``) only while this is ``Trip``'s only Python rule."""
        return new_york_time(value)


def trips_to_frame(trips: Sequence[Trip]) -> pd.DataFrame:
    """Trips -> a frame with the model's input columns (what ``taxi.model.build_features`` reads)."""
    frame = pd.DataFrame([t.model_dump() for t in trips], columns=INPUT_COLUMNS)
    frame["lpep_pickup_datetime"] = pd.to_datetime(frame["lpep_pickup_datetime"], utc=False)
    frame["passenger_count"] = frame["passenger_count"].astype("float64")
    return frame
