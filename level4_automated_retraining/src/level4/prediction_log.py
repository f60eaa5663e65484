"""The prediction log: every prediction the service answers is kept, off the request path.

    store = PredictionStore("sqlite:///data/predictions.db")      # or postgresql+psycopg://...
    log = PredictionLog(store, max_queue_rows=100_000)
    app = taxi.serving.create_app(holder, on_predictions=log.record, workers=[log])

**The store** (``PredictionStore``): two SQLAlchemy tables, ``predictions`` (one row per predicted trip: the
request id and the trip's position in the request, the time it was answered, the model version and variant,
the trip's inputs, the prediction) and ``feedback`` (the true duration of a trip, joined later by request id
and position: ``level4.feedback``). SQLite in WAL mode by default, with ``synchronous=FULL``: a committed
batch is on disk before it counts as written. A PostgreSQL URL (``postgresql+psycopg://user:password@host/db``,
the level's extra ``postgres``) works the same (``tests/test_postgres_store.py`` runs the tests on a real
server): the tables are plain types (``TIMESTAMP WITHOUT TIME ZONE`` holding naive times: pickups in New York
local time, ``logged_at`` / ``received_at`` in UTC); several services or jobs may create them at once (an
advisory lock takes them in turn); a connection is tested before use (``pool_pre_ping``), so a server that
restarts is used again without restarting the service; connecting gives up after ``CONNECT_TIMEOUT_SECONDS``
unless the URL says otherwise (``?connect_timeout=``); a client's request id longer than the column is cut to
it (PostgreSQL would refuse the whole batch, where SQLite keeps any length).

**The writer** (``PredictionLog``): ``record`` is what the request path calls. It only appends the request's
trips and predictions to an in-memory queue (microseconds; no conversion, no I/O) and returns. A writer thread
takes what is queued in batches of up to ``batch_rows`` predictions and inserts each batch in one transaction.
``written`` counts the predictions whose transaction committed: those survive a ``kill -9`` of the service.

**When the store fails** (unreachable, full, locked too long): the batch is tried once more after a pause, then
dropped and counted (``dropped["store_error"]``), and the log says so (one line when the error starts or
changes, and a count while it lasts); once the store takes writes again, logging resumes by itself
(``tests/test_log_faults.py`` fills a real disk under a SQLite store, then frees it). **When the writer falls
behind**, the queue stops at ``max_queue_rows`` predictions and what does not fit is dropped and counted
(``dropped["queue_full"]``): memory stays bounded and the service keeps answering. A prediction is never
turned into an error because logging failed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    insert,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from taxi.hotswap import LoadedModel
from taxi.trip import Trip

log = logging.getLogger("level4.prediction_log")

REQUEST_ID_LENGTH = 200  # a request id (a client may send its own X-Request-ID) is kept up to this length
CONNECT_TIMEOUT_SECONDS = 5  # PostgreSQL: an unreachable server is an error after this, not a hang
SCHEMA_LOCK = 0x6C34_7072  # PostgreSQL advisory lock key: one schema creation at a time
METADATA = MetaData()
PREDICTIONS = Table(
    "predictions",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(REQUEST_ID_LENGTH), nullable=False),
    Column("row", Integer, nullable=False),  # the trip's position in the request (0 for a single trip)
    Column("logged_at", DateTime, nullable=False),  # when the service answered (UTC)
    Column("model_version", String(64), nullable=False),
    Column("variant", String(32), nullable=False),
    Column("PULocationID", Integer, nullable=False),
    Column("DOLocationID", Integer, nullable=False),
    Column("trip_distance", Float, nullable=False),
    Column("pickup_datetime", DateTime, nullable=False),  # as the client gave it: New York local time
    Column("passenger_count", Integer, nullable=True),
    Column("prediction", Float, nullable=False),  # minutes
    Index("ix_predictions_request", "request_id", "row"),
    Index("ix_predictions_pickup", "pickup_datetime"),
)
LOGGED_COLUMNS = [c.name for c in PREDICTIONS.columns if c.name != "id"]  # what the writer inserts, in order
FEEDBACK = Table(
    "feedback",
    METADATA,
    Column("request_id", String(REQUEST_ID_LENGTH), primary_key=True),
    Column("row", Integer, primary_key=True),
    Column("actual_duration_min", Float, nullable=False),
    Column("received_at", DateTime, nullable=False),
)
ERROR_REPEAT_SECONDS = 30.0  # while the store keeps failing, a line this often with the count dropped


def sqlite_path(url: str) -> Path | None:
    """The database file of a sqlite URL (None for another database or an in-memory one)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


class PredictionStore:
    """The prediction and feedback tables behind one SQLAlchemy engine (see module doc)."""

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

    def insert_predictions(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert rows of ``predictions`` in one transaction, committed (on disk) when this returns."""
        self.ensure_schema()
        with self.engine.begin() as connection:
            connection.execute(insert(PREDICTIONS), list(rows))

    @property
    def stores_time_as_text(self) -> bool:
        """SQLite keeps a DateTime as text (SQLAlchemy's format); a server database takes datetime objects."""
        return self.engine.dialect.name == "sqlite"

    def insert_tuples(self, rows: list[tuple[Any, ...]]) -> None:
        """The writer's fast path: rows as tuples in ``LOGGED_COLUMNS`` order (times already in the store's
        format, see ``stores_time_as_text``), one driver-level executemany in one transaction: the driver does the
        per-row work in C, with the interpreter lock released while SQLite writes, so the request handler is not
        starved (SQLAlchemy's per-row parameter processing cost ~40 ms of interpreter time per 1,000 rows)."""
        self.ensure_schema()
        with self.engine.begin() as connection:
            connection.exec_driver_sql(self._insert_sql(connection.dialect), rows)

    def _insert_sql(self, dialect: Any) -> str:
        quote = dialect.identifier_preparer.quote
        marker = "?" if dialect.paramstyle == "qmark" else "%s"
        columns = ", ".join(quote(c) for c in LOGGED_COLUMNS)
        return f"INSERT INTO {quote(PREDICTIONS.name)} ({columns}) VALUES ({', '.join([marker] * len(LOGGED_COLUMNS))})"

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


@dataclass
class _Pending:
    """One answered request, as the request path left it: converted to rows by the writer thread."""

    seq: int
    request_id: str
    logged_at: float
    version: str
    variant: str
    trips: Sequence[Trip]
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


@dataclass
class PredictionLog:
    """A bounded queue of answered predictions and the thread that writes them to ``store`` (see module doc)."""

    store: PredictionStore
    max_queue_rows: int = 100_000
    batch_rows: int = 5_000
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
    _cond: threading.Condition = field(default_factory=threading.Condition, init=False)
    _stopping: bool = field(default=False, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    # ---- the request path ----

    def record(self, request_id: str, served: LoadedModel, trips: Sequence[Trip], predictions: np.ndarray) -> None:
        """Queue one answered request (``taxi.serving`` calls it after each prediction). Never blocks, never raises
        for a full queue: what does not fit is counted as dropped."""
        n = len(trips)
        with self._cond:
            self._seq += 1
            if self._queued_rows + n > self.max_queue_rows:
                self._dropped["queue_full"] += n
                self._warn_dropped("queue_full", f"the writer is behind: {self._queued_rows} predictions queued")
                return
            item = _Pending(self._seq, request_id, time.time(), served.version, served.variant, trips, predictions)
            self._queue.append(item)
            self._queued_rows += n
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
            while (oldest := self._oldest_pending()) is not None and oldest <= target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._thread is None or not self._thread.is_alive():
                    return False
                self._cond.wait(min(remaining, 0.1))
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
            )

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:  # stopping, and everything is written
                    return
                batch = self._take_batch()
                self._in_flight = batch[0]
            self._write(batch)

    def _take_batch(self) -> list[_Pending]:
        """Whole requests from the front of the queue, up to ``batch_rows`` predictions (at least one request)."""
        batch, rows = [], 0
        while self._queue and (not batch or rows + len(self._queue[0].trips) <= self.batch_rows):
            item = self._queue.popleft()
            batch.append(item)
            rows += len(item.trips)
        return batch

    def _write(self, batch: list[_Pending]) -> None:
        rows = _tuples(batch, text_time=self.store.stores_time_as_text)
        error: SQLAlchemyError | None = None
        for attempt in range(2):
            try:
                self.store.insert_tuples(rows)
                error = None
                break
            except SQLAlchemyError as exc:
                error = exc
                if attempt == 0:
                    time.sleep(self.retry_pause)
        with self._cond:
            self._queued_rows -= len(rows)
            self._in_flight = None
            if error is None:
                self._written += len(rows)
                if self._last_write_ok is False:
                    log.warning("prediction store %s reachable again: logging predictions", self.store.describe())
                self._last_write_ok = True
            else:
                self._dropped["store_error"] += len(rows)
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


def _tuples(batch: list[_Pending], text_time: bool) -> list[tuple[Any, ...]]:
    """The batch's rows in ``LOGGED_COLUMNS`` order, built a column at a time (little interpreter work per row);
    with ``text_time``, times as SQLAlchemy stores them in SQLite (``2024-07-25 08:15:00.000000``)."""
    rows: list[tuple[Any, ...]] = []
    for item in batch:
        n = len(item.trips)
        logged_at = datetime.fromtimestamp(item.logged_at, UTC).replace(tzinfo=None)
        pickups = [trip.lpep_pickup_datetime for trip in item.trips]
        if text_time:
            logged_at = logged_at.isoformat(" ", "microseconds")
            pickups = [pickup.isoformat(" ", "microseconds") for pickup in pickups]
        rows.extend(
            zip(
                repeat(item.request_id[:REQUEST_ID_LENGTH], n), range(n), repeat(logged_at, n),
                repeat(item.version, n), repeat(item.variant, n),
                [trip.PULocationID for trip in item.trips], [trip.DOLocationID for trip in item.trips],
                [trip.trip_distance for trip in item.trips], pickups,
                [trip.passenger_count for trip in item.trips], item.predictions.tolist(),
                strict=True,
            )
        )  # fmt: skip
    return rows


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
        if stats is not None:
            written.add_metric([], float(stats.written))
            for reason, count in stats.dropped.items():
                dropped.add_metric([reason], float(count))
            queued.add_metric([], float(stats.queued_rows))
            lag.add_metric([], stats.lag_seconds)
            if stats.last_write_ok is not None:
                ok.add_metric([], 1.0 if stats.last_write_ok else 0.0)
        yield from (written, dropped, queued, lag, ok)
