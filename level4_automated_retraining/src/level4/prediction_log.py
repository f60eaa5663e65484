"""The prediction log: every prediction the service answers is kept, off the request path.

    store = PredictionStore("sqlite:///data/predictions.db")      # or postgresql+psycopg://...
    log = PredictionLog(store, max_queue_rows=100_000)
    app = taxi.serving.create_app(holder, on_predictions=log.record, workers=[log])
    with store.engine.connect() as connection:
        frame = read_predictions(connection, start, end)           # one row per predicted trip

**The store** (``PredictionStore``): three SQLAlchemy tables.

- ``prediction_batches``: one row per write of the log (every few hundred milliseconds under load: the requests
  answered meanwhile). Its requests and their trips are **packed columns**, the way a columnar file keeps a row
  group: per request (``PER_REQUEST``) how many trips it held, when it was answered and which model answered
  (an index into the row's ``models``, a JSON list of ``[version, variant]``); per trip (``PACKED``) its inputs
  and its prediction. Each is one little-endian array (``numpy.frombuffer`` reads it back). The row also has the
  request ids (a JSON list, in order), its counts, and its first and last pickup and answer times, so a window is
  read without unpacking batches outside it.
- ``logged_requests``: one narrow row per answered request, ``(request_id, batch_id, position)``, its primary
  key: where a request id's trips are, for feedback (a client may send its own ``X-Request-ID``, so an id may be
  logged twice: the later counts).
- ``feedback``: the true duration of a trip, joined later by request id and position (``level4.feedback``).

``read_predictions`` unpacks a window into one row per predicted trip (request id, position in the request, time,
version, variant, inputs, prediction): what monitoring and feedback work on.

Why packed, and by batch: a row per trip cost the service half its throughput on batches (SQLite's per-row
inserts and index updates took ~15 ms of processor time per 1,000 trips, beside ~9 ms to answer them), and a
packed row per request still cost single-trip traffic ~35 µs of the writer's processor time a request (its
packing, its 13 values, two index entries). A batch is packed with numpy in one go and the per-request work left
is one short row of ``logged_requests`` (``make bench`` measures logging on vs off). The trip columns are the
ones the compiled model read a batch from (``taxi.trip_columns.TripColumns``, which ``taxi.serving`` hands to the
hook), so logging converts nothing again; single trips are gathered from their objects by the writer.

SQLite in WAL mode by default, with ``synchronous=FULL``: a committed batch is on disk before it counts as
written. A PostgreSQL URL (``postgresql+psycopg://user:password@host/db``, the level's extra ``postgres``) works
the same (``tests/test_postgres_store.py`` runs the tests on a real server): the tables are plain types
(``BYTEA`` for the packed columns, ``TIMESTAMP WITHOUT TIME ZONE`` holding naive times: pickups in New York
local time, answer and ``received_at`` times in UTC); several services or jobs may create them at once (an
advisory lock takes them in turn); a connection is tested before use (``pool_pre_ping``), so a server that
restarts is used again without restarting the service; connecting gives up after ``CONNECT_TIMEOUT_SECONDS``
unless the URL says otherwise (``?connect_timeout=``); a client's request id longer than the column is cut to
it (PostgreSQL would refuse the whole batch, where SQLite keeps any length).

**The writer** (``PredictionLog``): ``record`` is what the request path calls. It only appends the request's
trips and predictions to an in-memory queue (microseconds; no conversion, no I/O) and returns. A writer thread
wakes when the queue gets its first request, lets requests gather for up to ``linger`` seconds (or until
``batch_rows`` predictions wait, or someone calls ``flush``), packs them and inserts them in one transaction:
a few commits a second under load instead of one a request. ``written`` counts the predictions whose transaction
committed: those survive a ``kill -9`` of the service.

The request ids go in with multi-row ``INSERT`` statements, not an ``executemany``: SQLite's driver lets go of
the GIL around every row it steps, and taking it back from the busy request thread each time made the writer
wait for it and the request thread hand it over. The request ids the service makes are time-ordered
(``taxi.serving.new_request_id``), so their index grows at its end.

**When the store fails** (unreachable, full, locked too long): the batch is tried once more after a pause, then
dropped and counted (``dropped["store_error"]``), and the log says so (one line when the error starts or
changes, and a count while it lasts); once the store takes writes again, logging resumes by itself
(``tests/test_log_faults.py`` fills a real disk under a SQLite store, then frees it). **When the writer falls
behind**, the queue stops at ``max_queue_rows`` predictions and what does not fit is dropped and counted
(``dropped["queue_full"]``): memory stays bounded and the service keeps answering. A prediction is never
turned into an error because logging failed.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    select,
    text,
)
from sqlalchemy.engine import make_url

from taxi.hotswap import LoadedModel
from taxi.trip import NEW_YORK
from taxi.trip_columns import EPOCH, MICROSECOND, TripColumns

log = logging.getLogger("level4.prediction_log")

REQUEST_ID_LENGTH = 200  # a request id (a client may send its own X-Request-ID) is kept up to this length
IDS_PER_STATEMENT = 5_000  # rows of logged_requests in one INSERT: 15,000 parameters (SQLite 32,766, PostgreSQL 65,535)
TRIPS_PER_BATCH = 5_000  # insert_requests: a new batch row after this many trips (a request is never split)
CONNECT_TIMEOUT_SECONDS = 5  # PostgreSQL: an unreachable server is an error after this, not a hang
SCHEMA_LOCK = 0x6C34_7072  # PostgreSQL advisory lock key: one schema creation at a time
PER_REQUEST: dict[str, str] = {  # a batch's requests: column -> the numpy dtype of its packed array (little-endian)
    "trip_count": "<i4",  # how many trips the request held: its trips follow the previous request's
    "answered_at": "<i8",  # microseconds since 1970-01-01 00:00 UTC: when the service answered
    "model": "<i2",  # which model answered: an index into the batch's ``models``
}
PACKED: dict[str, str] = {  # a batch's trips: column -> the numpy dtype of its packed array (little-endian)
    "PULocationID": "<i2",
    "DOLocationID": "<i2",
    "trip_distance": "<f8",
    "pickup_datetime": "<i8",  # microseconds since 1970-01-01 00:00 of the pickup's New York local time
    "passenger_count": "<f8",  # NaN where the client gave none
    "prediction": "<f8",  # minutes
}
TRIP_COLUMNS = [c for c in PACKED if c != "prediction"]
METADATA = MetaData()
BATCHES = Table(
    "prediction_batches",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("requests", Integer, nullable=False),
    Column("trips", Integer, nullable=False),
    Column("first_answered", DateTime, nullable=False),  # the earliest and latest answer among the requests (UTC)
    Column("last_answered", DateTime, nullable=False),
    Column("first_pickup", DateTime, nullable=False),  # the earliest and latest pickup among the trips (New York
    Column("last_pickup", DateTime, nullable=False),  # time): a window is read without unpacking batches outside it
    Column("models", Text, nullable=False),  # JSON: [[version, variant], ...], what PER_REQUEST's model points at
    Column("request_ids", Text, nullable=False),  # JSON: the requests' ids, in order
    *(Column(name, LargeBinary, nullable=False) for name in PER_REQUEST),
    *(Column(name, LargeBinary, nullable=False) for name in PACKED),
    Index("ix_prediction_batches_pickup", "first_pickup", "last_pickup"),
)
REQUESTS = Table(
    "logged_requests",
    METADATA,
    Column("request_id", String(REQUEST_ID_LENGTH), primary_key=True),
    Column("batch_id", Integer, primary_key=True),  # prediction_batches.id
    Column("position", Integer, primary_key=True),  # the request's place among the batch's requests
    sqlite_with_rowid=False,  # SQLite: the primary key is the table (one B-tree to update, not two)
)
FEEDBACK = Table(
    "feedback",
    METADATA,
    Column("request_id", String(REQUEST_ID_LENGTH), primary_key=True),
    Column("row", Integer, primary_key=True),
    Column("actual_duration_min", Float, nullable=False),
    Column("received_at", DateTime, nullable=False),
)
ERROR_REPEAT_SECONDS = 30.0  # while the store keeps failing, a line this often with the count dropped
PREDICTION_FRAME_COLUMNS = ["request_id", "row", "logged_at", "model_version", "variant", *PACKED]


def sqlite_path(url: str) -> Path | None:
    """The database file of a sqlite URL (None for another database or an in-memory one)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


@dataclass(frozen=True)
class LoggedRequest:
    """One answered request as the log keeps it: its trips as columns, their predictions; ``logged_at`` is a Unix
    time."""

    request_id: str
    logged_at: float
    version: str
    variant: str
    columns: TripColumns
    predictions: np.ndarray

    def pending(self) -> _Pending:
        """This request as the request path leaves one for the writer."""
        rows = len(self.predictions)
        return _Pending(0, self.request_id, self.logged_at, self.version, self.variant, rows, None, self.columns,
                        self.predictions)  # fmt: skip


@dataclass(frozen=True)
class PackedBatch:
    """Requests packed for the store: a row of ``prediction_batches`` (without its id) and the requests' ids."""

    row: dict[str, Any]
    request_ids: list[str]


class PredictionStore:
    """The batch, request and feedback tables behind one SQLAlchemy engine (see module doc)."""

    def __init__(self, url: str):
        self.url = url
        parsed = make_url(url)
        connect_args: dict[str, Any] = {}
        if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
        self.engine: Engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self._ids_sqls: dict[int, str] = {}

    def ensure_schema(self) -> None:
        """Create the tables if they are not there (raises SQLAlchemyError when the store cannot be reached).
        Threads and processes may call it at once: on PostgreSQL, concurrent CREATE TABLEs of the same table fail
        on the catalog's unique index, so each takes an advisory lock and checks again once it holds it."""
        if self._schema_ready:
            return
        with self._schema_lock:
            if self._schema_ready:
                return
            with self.engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
                METADATA.create_all(connection)
            self._schema_ready = True

    def insert_requests(self, requests: Sequence[LoggedRequest]) -> None:
        """Pack ``requests`` (batches of up to ``TRIPS_PER_BATCH`` trips) and insert them in one transaction,
        committed (on disk) when this returns. For tools and tests that write a log without a service."""
        batches: list[list[_Pending]] = []
        trips = TRIPS_PER_BATCH
        for request in (r.pending() for r in requests):
            if trips + request.rows > TRIPS_PER_BATCH:
                batches.append([])
                trips = 0
            batches[-1].append(request)
            trips += request.rows
        self.insert_batches([pack(batch) for batch in batches])

    def insert_batches(self, batches: Sequence[PackedBatch]) -> None:
        """Insert packed batches in one transaction, committed (on disk) when this returns: each batch's row, then
        its request ids with driver-level multi-row INSERTs (not an executemany: see module doc)."""
        self.ensure_schema()
        with self.engine.begin() as connection:
            for batch in batches:
                batch_id = connection.execute(BATCHES.insert(), batch.row).inserted_primary_key[0]
                ids = batch.request_ids
                for start in range(0, len(ids), IDS_PER_STATEMENT):
                    chunk = ids[start : start + IDS_PER_STATEMENT]
                    values = tuple(v for position, i in enumerate(chunk, start) for v in (i, batch_id, position))
                    connection.exec_driver_sql(self._ids_sql(connection.dialect, len(chunk)), values)

    def insert_predictions(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert predictions given a trip at a time (dicts with ``PREDICTION_FRAME_COLUMNS``; ``logged_at`` a
        naive UTC datetime): consecutive rows of one request id, numbered 0, 1, ..., make one logged request.
        For tools and tests that write a log without a service."""
        requests: list[LoggedRequest] = []
        group: list[Mapping[str, Any]] = []
        for row in [*rows, None]:
            if group and (row is None or row["request_id"] != group[0]["request_id"] or row["row"] == 0):
                if [r["row"] for r in group] != list(range(len(group))):
                    raise ValueError(f"request {group[0]['request_id']!r}: rows must be numbered 0, 1, ... in order")
                first = group[0]
                requests.append(
                    LoggedRequest(
                        first["request_id"],
                        first["logged_at"].replace(tzinfo=UTC).timestamp(),
                        first["model_version"],
                        first["variant"],
                        TripColumns.of([_as_trip(r) for r in group]),
                        np.array([r["prediction"] for r in group], dtype=np.float64),
                    )
                )
                group = []
            if row is not None:
                group.append(row)
        if requests:
            self.insert_requests(requests)

    def _ids_sql(self, dialect: Any, rows: int) -> str:
        """``INSERT INTO logged_requests (...) VALUES (...), (...), ...`` for ``rows`` rows (kept per count)."""
        if (sql := self._ids_sqls.get(rows)) is None:
            quote = dialect.identifier_preparer.quote
            marker = "?" if dialect.paramstyle == "qmark" else "%s"
            columns = ", ".join(quote(c.name) for c in REQUESTS.columns)
            row = f"({', '.join([marker] * len(REQUESTS.columns))})"
            sql = self._ids_sqls[rows] = (
                f"INSERT INTO {quote(REQUESTS.name)} ({columns}) VALUES {', '.join([row] * rows)}"
            )
        return sql

    def describe(self) -> str:
        """The URL without its password, for logs and messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (monitoring, feedback) never block the writer
    cursor.execute("PRAGMA synchronous=FULL")  # a commit is on disk when it returns
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


# ---- packing a batch of requests, and reading them back ----


def _as_trip(row: Mapping[str, Any]) -> SimpleNamespace:
    """A logged row's inputs with ``Trip``'s attribute names (the frame calls the pickup ``pickup_datetime``)."""
    names = {c: "lpep_pickup_datetime" if c == "pickup_datetime" else c for c in TRIP_COLUMNS}
    return SimpleNamespace(**{name: row[column] for column, name in names.items()})


def _single(trip: Any, prediction: float) -> tuple[Any, ...]:
    """A single trip's values in ``PACKED`` order, from its object (no arrays for one trip)."""
    passengers = trip.passenger_count
    return (
        trip.PULocationID, trip.DOLocationID, trip.trip_distance, (trip.lpep_pickup_datetime - EPOCH) // MICROSECOND,
        math.nan if passengers is None else passengers, prediction,
    )  # fmt: skip


def _trip_arrays(requests: Sequence[_Pending]) -> list[np.ndarray]:
    """The trips of ``requests``, in order, as one array per ``PACKED`` column. Runs of single-trip requests are
    gathered from their trip objects; a batch's columns are taken as the compiled model read them."""
    parts: list[list[np.ndarray]] = [[] for _ in PACKED]
    singles: list[tuple[Any, ...]] = []

    def add_singles() -> None:
        if singles:
            for part, values, dtype in zip(parts, zip(*singles, strict=True), PACKED.values(), strict=True):
                part.append(np.array(values, dtype=dtype))
            singles.clear()

    for request in requests:
        columns = request.columns
        if columns is None and len(request.trips) == 1:
            singles.append(_single(request.trips[0], float(request.predictions[0])))
            continue
        add_singles()
        columns = columns if columns is not None else TripColumns.of(request.trips)
        values = (
            columns.PULocationID, columns.DOLocationID, columns.trip_distance, columns.pickup.view(np.int64),
            columns.passenger_count, request.predictions,
        )  # fmt: skip
        for part, value in zip(parts, values, strict=True):
            part.append(value)
    add_singles()
    return [np.concatenate(part).astype(dtype, copy=False) for part, dtype in zip(parts, PACKED.values(), strict=True)]


def pack(requests: Sequence[_Pending]) -> PackedBatch:
    """``requests`` (at least one, each of at least one trip) as one batch for the store (see module doc)."""
    trips = _trip_arrays(requests)
    pickups = trips[list(PACKED).index("pickup_datetime")]
    models: dict[tuple[str, str], int] = {}
    model = [models.setdefault((r.version, r.variant), len(models)) for r in requests]
    answered = np.rint(np.array([r.logged_at for r in requests]) * 1e6).astype(np.int64)
    ids = [r.request_id[:REQUEST_ID_LENGTH] for r in requests]
    per_request = (np.array([r.rows for r in requests]), answered, np.array(model))
    return PackedBatch(
        {
            "requests": len(requests),
            "trips": len(pickups),
            "first_answered": EPOCH + int(answered.min()) * MICROSECOND,
            "last_answered": EPOCH + int(answered.max()) * MICROSECOND,
            "first_pickup": EPOCH + int(pickups.min()) * MICROSECOND,
            "last_pickup": EPOCH + int(pickups.max()) * MICROSECOND,
            "models": json.dumps([list(m) for m in models]),
            "request_ids": json.dumps(ids),
            **{n: v.astype(d).tobytes() for (n, d), v in zip(PER_REQUEST.items(), per_request, strict=True)},
            **{n: v.tobytes() for n, v in zip(PACKED, trips, strict=True)},
        },
        ids,
    )


def _bound(moment: datetime) -> datetime:
    """Pickups are kept as naive New York local times (``taxi.trip``): an aware bound is converted to that (left
    as it is, PostgreSQL would compare it in the server's time zone and SQLite would drop its offset)."""
    return moment.astimezone(NEW_YORK).replace(tzinfo=None) if moment.tzinfo else moment


def batches_in(start: datetime | None, end: datetime | None) -> Any:
    """A WHERE clause: the batches holding a pickup in [start, end) (and maybe others beside)."""
    clause = BATCHES.c.id.isnot(None)
    if start is not None:
        clause = clause & (BATCHES.c.last_pickup >= _bound(start))
    if end is not None:
        clause = clause & (BATCHES.c.first_pickup < _bound(end))
    return clause


def _packed(batch: Any, name: str, dtype: str, length: int) -> np.ndarray:
    """One packed column of a batch row, checked against the count the row gives."""
    values = np.frombuffer(bytes(getattr(batch, name)), dtype=dtype)
    if len(values) != length:
        raise ValueError(f"prediction_batches.{name} of batch {batch.id}: {len(values)} values for {length} (damaged)")
    return values.astype(dtype.replace("<", "="), copy=False)


def unpack(batches: Sequence[Any]) -> pd.DataFrame:
    """Rows of ``prediction_batches`` (all its columns) -> one row per trip, ``PREDICTION_FRAME_COLUMNS``."""
    ids: list[str] = []
    per_request: list[list[np.ndarray]] = [[] for _ in range(4)]  # trip counts, answer times, versions, variants
    per_trip: list[list[np.ndarray]] = [[] for _ in PACKED]
    for batch in batches:
        request_ids = json.loads(batch.request_ids)
        counts, answered, model = (_packed(batch, n, d, batch.requests) for n, d in PER_REQUEST.items())
        if len(request_ids) != batch.requests or counts.sum() != batch.trips:
            raise ValueError(f"prediction_batches: batch {batch.id} does not add up (damaged)")
        models = np.array(json.loads(batch.models), dtype=object).reshape(-1, 2)
        ids += request_ids
        for part, values in zip(per_request, (counts, answered, models[model, 0], models[model, 1]), strict=True):
            part.append(values)
        for part, (name, dtype) in zip(per_trip, PACKED.items(), strict=True):
            part.append(_packed(batch, name, dtype, batch.trips))
    counts, answered, versions, variants = (
        np.concatenate(p) if p else np.array([], dtype=t) for p, t in zip(per_request, "iiOO", strict=True)
    )
    counts = counts.astype(np.int64)
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    columns: dict[str, Any] = {
        "request_id": np.repeat(np.array(ids, dtype=object), counts),
        "row": np.arange(total, dtype=np.int64) - starts,
        "logged_at": np.repeat(answered.astype("datetime64[us]").astype("datetime64[ns]"), counts),
        "model_version": np.repeat(versions, counts),
        "variant": np.repeat(variants, counts),
    }
    for (name, dtype), part in zip(PACKED.items(), per_trip, strict=True):
        columns[name] = np.concatenate(part) if part else np.array([], dtype=dtype.replace("<", "="))
    frame = pd.DataFrame(columns)
    frame["PULocationID"] = frame["PULocationID"].astype(np.int64)
    frame["DOLocationID"] = frame["DOLocationID"].astype(np.int64)
    frame["pickup_datetime"] = frame["pickup_datetime"].to_numpy().astype("datetime64[us]").astype("datetime64[ns]")
    return frame


def read_predictions(
    connection: Connection, start: datetime | None = None, end: datetime | None = None
) -> pd.DataFrame:
    """Every logged trip whose pickup is in [start, end), one row each (``PREDICTION_FRAME_COLUMNS``), as logged."""
    batches = connection.execute(select(BATCHES).where(batches_in(start, end)).order_by(BATCHES.c.id)).all()
    frame = unpack(batches)
    keep = np.ones(len(frame), dtype=bool)
    if start is not None:
        keep &= (frame["pickup_datetime"] >= pd.Timestamp(_bound(start))).to_numpy()
    if end is not None:
        keep &= (frame["pickup_datetime"] < pd.Timestamp(_bound(end))).to_numpy()
    return frame if keep.all() else frame[keep].reset_index(drop=True)


def logged_request_ids(start: datetime | None, end: datetime | None) -> Any:
    """A SELECT of the request ids logged in the batches holding a pickup in [start, end) (and maybe others)."""
    joined = REQUESTS.join(BATCHES, BATCHES.c.id == REQUESTS.c.batch_id)
    return select(REQUESTS.c.request_id).select_from(joined).where(batches_in(start, end))


def logged_pickups(connection: Connection, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], datetime]:
    """The pickup time of each (request id, position) that was logged (a request id logged twice: the later)."""
    wanted: dict[str, list[int]] = {}
    for request_id, row in keys:
        wanted.setdefault(request_id, []).append(row)
    where = select(REQUESTS).where(REQUESTS.c.request_id.in_(list(wanted)))
    located = connection.execute(where.order_by(REQUESTS.c.batch_id, REQUESTS.c.position)).all()
    query = select(BATCHES.c.id, BATCHES.c.requests, BATCHES.c.trips, BATCHES.c.trip_count, BATCHES.c.pickup_datetime)
    trips_of: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # batch id -> trip counts, firsts, pickups
    for batch in connection.execute(query.where(BATCHES.c.id.in_({r.batch_id for r in located}))):
        counts = _packed(batch, "trip_count", PER_REQUEST["trip_count"], batch.requests)
        pickups = _packed(batch, "pickup_datetime", PACKED["pickup_datetime"], batch.trips)
        trips_of[batch.id] = (counts, np.cumsum(counts) - counts, pickups)
    found: dict[tuple[str, int], datetime] = {}
    for request in located:
        counts, firsts, pickups = trips_of[request.batch_id]
        first = int(firsts[request.position])
        for row in wanted[request.request_id]:
            if 0 <= row < counts[request.position]:
                found[(request.request_id, row)] = EPOCH + int(pickups[first + row]) * MICROSECOND
    return found


def recent_pickups(connection: Connection, trips: int) -> pd.Series:
    """The pickup times of the last ``trips`` logged trips (fewer if fewer were logged)."""
    query = select(BATCHES.c.id, BATCHES.c.trips, BATCHES.c.pickup_datetime).order_by(BATCHES.c.id.desc())
    chunks, seen = [], 0
    for batch in connection.execute(query.limit(trips)):
        chunks.append(_packed(batch, "pickup_datetime", PACKED["pickup_datetime"], batch.trips))
        seen += batch.trips
        if seen >= trips:
            break
    values = np.concatenate(chunks[::-1])[-trips:] if chunks else np.array([], dtype=np.int64)
    return pd.Series(values.astype("datetime64[us]").astype("datetime64[ns]"))


@dataclass
class _Pending:
    """One answered request, as the request path left it: packed by the writer thread."""

    seq: int
    request_id: str
    logged_at: float
    version: str
    variant: str
    rows: int
    trips: Sequence[Any] | None  # only when there are no columns: a batch's trip objects are not kept alive
    columns: TripColumns | None
    predictions: np.ndarray


@dataclass(frozen=True)
class LogStats:
    """The prediction log's figures at one moment (``/metrics`` shows them)."""

    written: int
    dropped: dict[str, int]
    queued_rows: int
    lag_seconds: float  # age of the oldest prediction still waiting to be written (0 when none waits)
    last_write_ok: bool | None
    last_error: str | None
    writer_cpu_seconds: float  # processor time the writer thread has used packing and writing (not waiting)


@dataclass
class PredictionLog:
    """A bounded queue of answered predictions and the thread that writes them to ``store`` (see module doc)."""

    store: PredictionStore
    max_queue_rows: int = 100_000
    batch_rows: int = 5_000
    linger: float = 0.25  # seconds the writer lets requests gather before a write (a few commits a second)
    retry_pause: float = 0.5
    _queue: deque[_Pending] = field(default_factory=deque, init=False)
    _queued_rows: int = field(default=0, init=False)
    _seq: int = field(default=0, init=False)
    _in_flight: _Pending | None = field(default=None, init=False)  # the first request the writer is writing
    _written: int = field(default=0, init=False)
    _dropped: dict[str, int] = field(default_factory=lambda: {"queue_full": 0, "store_error": 0}, init=False)
    _last_write_ok: bool | None = field(default=None, init=False)
    _last_error: str | None = field(default=None, init=False)
    _last_error_logged: float = field(default=0.0, init=False)
    _writer_cpu: float = field(default=0.0, init=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, init=False)
    _stopping: bool = field(default=False, init=False)
    _flushing: int = field(default=0, init=False)  # callers waiting in flush(): the writer does not linger
    _thread: threading.Thread | None = field(default=None, init=False)

    # ---- the request path ----

    def record(
        self,
        request_id: str,
        served: LoadedModel,
        trips: Sequence[Any],
        predictions: np.ndarray,
        columns: TripColumns | None = None,
    ) -> None:
        """Queue one answered request (``taxi.serving`` calls it after each prediction: ``trips`` are ``Trip`` or
        ``TripRow`` objects, ``columns`` the same trips as the compiled model read them, or None: the writer makes
        them). Never blocks, never raises for a full queue: what does not fit is counted as dropped.
        The writer is woken only by the first request queued and when a batch is full, not by every one."""
        n = len(trips)
        if n == 0:  # nothing was predicted (the service answers no empty request; a caller might)
            return
        with self._cond:
            self._seq += 1
            if self._queued_rows + n > self.max_queue_rows:
                self._dropped["queue_full"] += n
                self._warn_dropped("queue_full", f"the writer is behind: {self._queued_rows} predictions queued")
                return
            # a batch's columns, not its trip objects: thousands of them held for the writer slowed every request
            kept = None if columns is not None else trips
            item = _Pending(
                self._seq, request_id, time.time(), served.version, served.variant, n, kept, columns, predictions
            )
            self._queue.append(item)
            self._queued_rows += n
            if len(self._queue) == 1 or self._queued_rows >= self.batch_rows:
                self._cond.notify()

    # ---- the writer thread ----

    def start(self) -> None:
        """Start the writer thread (the app does it at start-up: ``workers=[log]``)."""
        if self._thread is None or not self._thread.is_alive():
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Write what is queued (within ``timeout``), then stop the writer thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        self.store.dispose()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every prediction queued before this call is written or dropped; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._seq
            self._flushing += 1
            self._cond.notify_all()
            try:
                while (oldest := self._oldest_pending()) is not None and oldest <= target:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._thread is None or not self._thread.is_alive():
                        return False
                    self._cond.wait(min(remaining, 0.1))
            finally:
                self._flushing -= 1
        return True

    def _oldest_pending(self) -> int | None:
        """The seq of the oldest request not yet written or dropped (None: all done). Call with the lock held."""
        if self._in_flight is not None:
            return self._in_flight.seq
        return self._queue[0].seq if self._queue else None

    def stats(self) -> LogStats:
        with self._cond:
            first = self._in_flight or (self._queue[0] if self._queue else None)
            oldest = first.logged_at if first is not None else None
            return LogStats(
                written=self._written,
                dropped=dict(self._dropped),
                queued_rows=self._queued_rows,
                lag_seconds=max(0.0, time.time() - oldest) if oldest is not None else 0.0,
                last_write_ok=self._last_write_ok,
                last_error=self._last_error,
                writer_cpu_seconds=self._writer_cpu,
            )

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:  # stopping, and everything is written
                    return
                gather_until = time.monotonic() + self.linger
                while self._queued_rows < self.batch_rows and not (self._stopping or self._flushing):
                    if (remaining := gather_until - time.monotonic()) <= 0:
                        break
                    self._cond.wait(remaining)
                batch = self._take_batch()
                self._in_flight = batch[0]
            self._write(batch)

    def _take_batch(self) -> list[_Pending]:
        """Whole requests from the front of the queue, up to ``batch_rows`` predictions (at least one request)."""
        batch, rows = [], 0
        while self._queue and (not batch or rows + self._queue[0].rows <= self.batch_rows):
            item = self._queue.popleft()
            batch.append(item)
            rows += item.rows
        return batch

    def _write(self, batch: list[_Pending]) -> None:
        began = time.thread_time()
        rows = sum(item.rows for item in batch)
        error: Exception | None = None
        packed: PackedBatch | None = None
        for attempt in range(2):
            try:
                packed = packed or pack(batch)  # packed once: a retry only writes again
                self.store.insert_batches([packed])
                error = None
                break
            except Exception as exc:  # the store's errors, or a value it cannot take: the writer never dies of it
                error = exc
                if attempt == 0:
                    time.sleep(self.retry_pause)
        with self._cond:
            self._writer_cpu += time.thread_time() - began
            self._queued_rows -= rows
            self._in_flight = None
            if error is None:
                self._written += rows
                if self._last_write_ok is False:
                    log.warning("prediction store %s reachable again: logging predictions", self.store.describe())
                self._last_write_ok = True
            else:
                self._dropped["store_error"] += rows
                self._last_write_ok = False
                message = _one_line(error)
                changed = message != self._last_error
                self._last_error = message
                self._warn_dropped("store_error", message, force=changed)
            self._cond.notify_all()
        if error is not None:
            time.sleep(self.retry_pause)  # a store that is down is not hammered

    def _warn_dropped(self, reason: str, why: str, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_error_logged >= ERROR_REPEAT_SECONDS:
            self._last_error_logged = now
            log.error(
                "prediction log: dropping predictions (%s; %s): %s dropped so far (%s); the service keeps answering",
                reason,
                why,
                sum(self._dropped.values()),
                ", ".join(f"{k} {v}" for k, v in self._dropped.items()),
            )


def _one_line(error: Exception) -> str:
    text = str(getattr(error, "orig", None) or error).splitlines()[0]
    return f"{type(getattr(error, 'orig', None) or error).__name__}: {text}"[:300]


class PredictionLogCollector(Collector):
    """The prediction log's figures for ``/metrics``, read when Prometheus scrapes:

    - ``taxi_prediction_log_written_total``: predictions committed to the store
    - ``taxi_prediction_log_dropped_total{reason}``: ``queue_full`` (the writer was behind) or ``store_error``
    - ``taxi_prediction_log_queued``: predictions waiting to be written
    - ``taxi_prediction_log_lag_seconds``: age of the oldest prediction waiting (0 when none waits)
    - ``taxi_prediction_log_last_write_ok``: 1 if the last write succeeded, 0 if it failed
    - ``taxi_prediction_log_writer_cpu_seconds_total``: processor time the writer thread used (what logging costs
      the service beside the request path's queueing; ``make bench`` divides it by the requests answered)
    """

    def __init__(self, prediction_log: PredictionLog):
        self.prediction_log = prediction_log

    def describe(self) -> list[Metric]:
        return list(self._families(None))

    def collect(self) -> Iterator[Metric]:
        yield from self._families(self.prediction_log.stats())

    def _families(self, stats: LogStats | None) -> Iterator[Metric]:
        written = CounterMetricFamily("taxi_prediction_log_written", "predictions committed to the prediction store")
        dropped = CounterMetricFamily(
            "taxi_prediction_log_dropped", "predictions not logged: queue_full or store_error", labels=["reason"]
        )
        queued = GaugeMetricFamily("taxi_prediction_log_queued", "predictions waiting to be written")
        lag = GaugeMetricFamily("taxi_prediction_log_lag_seconds", "age of the oldest prediction waiting to be written")
        ok = GaugeMetricFamily("taxi_prediction_log_last_write_ok", "1 if the last write succeeded, 0 if it failed")
        cpu = CounterMetricFamily("taxi_prediction_log_writer_cpu_seconds", "processor time the writer thread used")
        if stats is not None:
            written.add_metric([], float(stats.written))
            for reason, count in stats.dropped.items():
                dropped.add_metric([reason], float(count))
            queued.add_metric([], float(stats.queued_rows))
            lag.add_metric([], stats.lag_seconds)
            if stats.last_write_ok is not None:
                ok.add_metric([], 1.0 if stats.last_write_ok else 0.0)
            cpu.add_metric([], stats.writer_cpu_seconds)
        yield from (written, dropped, queued, lag, ok, cpu)
