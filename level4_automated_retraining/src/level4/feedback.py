"""Ground truth, joined to the predictions later by request id: ``POST /feedback`` and ``level4 feedback FILE``.

A feedback item names a prediction by the ``request_id`` the service answered with (``X-Request-ID``) and the
trip's ``index`` in that request (0 for a single trip), and gives the truth: ``actual_duration_min``, or the
``dropoff_datetime`` (the duration is then taken from the logged pickup time). Each trip gets feedback once.

    outcome = record_feedback(store, items, all_or_nothing=True)   # the API: one bad item, nothing stored
    outcome = record_feedback(store, items, all_or_nothing=False)  # a file: the good items, the rest reported

An item is **invalid** (a bad value: the API's 422 before anything is looked up, or a dropoff not after the
logged pickup), **unknown** (no such prediction in the log), or a **duplicate** (feedback for that trip was
recorded before, or it is given twice in one call).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from sqlalchemy import insert, select, tuple_
from sqlalchemy.exc import IntegrityError

from level4.prediction_log import FEEDBACK, REQUEST_ID_LENGTH, PredictionStore, logged_pickups
from taxi.trip import JsonInteger, NewYorkTime

MAX_MINUTES = 24 * 60.0  # a longer "trip" is a data error, not a duration
MAX_ITEMS = 10_000  # feedback items in one POST /feedback (413 above)
MAX_INDEX = 2**31 - 1  # the store's 32-bit INTEGER column (a larger index made SQLite raise: a 500)
LOOKUP_CHUNK = 400  # keys per SQL lookup (SQLite's limit on bound parameters)


class Feedback(BaseModel):
    """The true outcome of one predicted trip."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"request_id": "3f2a9c1e8d7b4a6f", "index": 0, "actual_duration_min": 14.5}],
            # exactly one truth (what _one_truth enforces), stated in the OpenAPI
            "oneOf": [
                {
                    "required": ["actual_duration_min"],
                    "properties": {"actual_duration_min": {"type": "number"}, "dropoff_datetime": {"type": "null"}},
                },
                {
                    "required": ["dropoff_datetime"],
                    "properties": {"dropoff_datetime": {"type": "string"}, "actual_duration_min": {"type": "null"}},
                },
            ],
        },
    )

    request_id: str = Field(
        min_length=1, max_length=REQUEST_ID_LENGTH, description="the X-Request-ID the prediction answered with"
    )
    index: Annotated[int, JsonInteger(0, MAX_INDEX)] = Field(
        0, description="the trip's position in that request's list (0 for a single trip)"
    )
    actual_duration_min: float | None = Field(
        None, gt=0, le=MAX_MINUTES, allow_inf_nan=False, strict=True, description="the trip's true duration in minutes"
    )
    dropoff_datetime: NewYorkTime | None = Field(
        None,
        description="the trip's true dropoff time: New York local time, or with a UTC offset (converted to "
        "New York time, as the pickup is)",
    )

    @model_validator(mode="after")
    def _one_truth(self) -> Feedback:
        if (self.actual_duration_min is None) == (self.dropoff_datetime is None):
            raise ValueError("give exactly one of actual_duration_min or dropoff_datetime")
        return self


FEEDBACK_LIST = TypeAdapter(list[Feedback])


@dataclass
class FeedbackOutcome:
    """What happened to each item, by its position in the call: accepted, or why not."""

    accepted: list[int] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)
    duplicate: list[tuple[int, str]] = field(default_factory=list)  # (position, why)
    invalid: list[tuple[int, str, str]] = field(default_factory=list)  # (position, field, why)
    stored: bool = False

    @property
    def ok(self) -> bool:
        return not (self.unknown or self.duplicate or self.invalid)

    def counts(self) -> dict[str, int]:
        return {
            "accepted": len(self.accepted) if self.stored else 0,
            "unknown": len(self.unknown),
            "duplicate": len(self.duplicate),
            "invalid": len(self.invalid),
        }


def feedback_counter() -> Counter:
    """``taxi_feedback_total{outcome}``: feedback items accepted, unknown, duplicate or invalid (``/metrics``)."""
    return Counter("taxi_feedback", "feedback items by outcome", ["outcome"], registry=None)


def _chunks(keys: Sequence[tuple[str, int]]) -> Iterator[Sequence[tuple[str, int]]]:
    for start in range(0, len(keys), LOOKUP_CHUNK):
        yield keys[start : start + LOOKUP_CHUNK]


def record_feedback(store: PredictionStore, items: Sequence[Feedback], *, all_or_nothing: bool) -> FeedbackOutcome:
    """Join ``items`` to the logged predictions and store the accepted ones (see module doc).

    ``all_or_nothing``: store nothing unless every item is accepted (the API). Raises SQLAlchemyError when the
    store cannot be reached."""
    store.ensure_schema()
    keys = list(dict.fromkeys((item.request_id, item.index) for item in items))
    outcome = FeedbackOutcome()
    with store.engine.begin() as connection:
        pickups: dict[tuple[str, int], datetime] = {}
        recorded: set[tuple[str, int]] = set()
        for chunk in _chunks(keys):
            pickups.update(logged_pickups(connection, chunk))
            done = connection.execute(
                select(FEEDBACK.c.request_id, FEEDBACK.c.row).where(
                    tuple_(FEEDBACK.c.request_id, FEEDBACK.c.row).in_(chunk)
                )
            )
            recorded.update((r.request_id, r.row) for r in done)
        seen: set[tuple[str, int]] = set()
        new_rows = []
        now = datetime.now(UTC).replace(tzinfo=None)
        for position, item in enumerate(items):
            key = (item.request_id, item.index)
            if key not in pickups:
                outcome.unknown.append(position)
            elif key in recorded:
                outcome.duplicate.append((position, "feedback for this trip was recorded before"))
            elif key in seen:
                outcome.duplicate.append((position, "given twice in this call"))
            else:
                minutes = item.actual_duration_min
                if minutes is None:
                    assert item.dropoff_datetime is not None
                    minutes = (item.dropoff_datetime - pickups[key]).total_seconds() / 60
                if not 0 < minutes <= MAX_MINUTES:
                    why = f"must be after the logged pickup {pickups[key]:%Y-%m-%d %H:%M:%S} and within 24 h of it"
                    outcome.invalid.append((position, "dropoff_datetime", why))
                    continue
                seen.add(key)
                outcome.accepted.append(position)
                new_rows.append(
                    {"request_id": key[0], "row": key[1], "actual_duration_min": minutes, "received_at": now}
                )
        if new_rows and (outcome.ok or not all_or_nothing):
            try:
                with connection.begin_nested():
                    connection.execute(insert(FEEDBACK), new_rows)
                outcome.stored = True
            except IntegrityError:  # another call recorded some of the same trips meanwhile
                outcome.duplicate.extend((p, "recorded by another call meanwhile") for p in outcome.accepted)
                outcome.accepted = []
    return outcome


def read_feedback_file(path: Path) -> tuple[list[Feedback], list[tuple[int, str, str]]]:
    """Feedback items from a CSV, JSON-lines or parquet file (columns as the API's fields); the valid items and,
    for each invalid row, (row number, field, rule)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame = pd.read_parquet(path)
    elif suffix in (".jsonl", ".ndjson"):
        frame = pd.read_json(path, lines=True, dtype={"request_id": str})
    elif suffix == ".csv":
        frame = pd.read_csv(path, dtype={"request_id": str})
    else:
        raise ValueError(f"{path}: a feedback file is .csv, .jsonl or .parquet (got '{suffix or 'no suffix'}')")
    if "request_id" not in frame.columns:
        raise ValueError(f"{path}: no request_id column (columns: {', '.join(map(str, frame.columns))})")
    items, invalid = [], []
    for number, record in enumerate(frame.to_dict("records")):
        clean: dict[str, Any] = {k: v for k, v in record.items() if not (pd.api.types.is_scalar(v) and pd.isna(v))}
        if isinstance(clean.get("dropoff_datetime"), pd.Timestamp):
            clean["dropoff_datetime"] = clean["dropoff_datetime"].to_pydatetime()
        try:
            items.append(Feedback.model_validate(clean))
        except ValidationError as exc:
            error = exc.errors()[0]
            invalid.append((number, ".".join(map(str, error["loc"])) or "row", error["msg"]))
    return items, invalid
