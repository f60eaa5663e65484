"""The FastAPI core every service level builds on (extra: ``taxi-shared[serving]``).

    app = create_app(model, max_batch=1000)                 # one model, for the life of the process
    app = create_app(holder, admin_token=settings.token)    # a taxi.hotswap.ModelHolder: hot swap, canary

``model`` is anything with ``predict(frame) -> array`` (the frame has ``taxi.model.INPUT_COLUMNS``)
and ``describe() -> dict`` (what is loaded: name, version, metadata). Levels differ only in where that
object comes from (a handed-off file, the MLflow registry, a hot-swapping holder) and in what they add.

Routes: ``POST /predict`` (one trip or a list), ``GET /health``, ``GET /model``, ``GET /metrics``
(Prometheus, ``taxi.service_metrics``), docs at ``/docs`` (Swagger UI) and ``/redoc``, whose scripts and styles
the service serves itself (``fastapi_offline``, under ``/static-offline-docs``): they work with no internet.
Client mistakes never give a 500: malformed JSON, a wrong type, a missing field, a negative distance, NaN/inf,
an unknown zone or a bad datetime give 422 with the field and the rule; more than ``max_batch`` trips give 413.
Every request body is bounded before it is read whole (``taxi.body_limit``, for every route): over
``max_body_bytes`` (default ``default_max_body_bytes(max_batch)``: 1 KiB a trip + 1 MiB) gives 413 at once
when ``Content-Length`` says so, else as soon as the chunks received pass it; a body not complete within
``body_timeout`` seconds (default 5) gives 408. Every response carries an ``X-Request-ID`` (the client's, else
``new_request_id()``: time-ordered), and each request is logged as one JSON line on the ``taxi.serving`` logger.

A batch costs what its trips cost, not the framework's overhead: the body is validated straight from its bytes,
as ``TripRow`` objects (``Trip``'s rules in pydantic-core alone) when the compiled model answers; the compiled
model reads them column by column; the answer is serialised by pydantic in Rust. A 1000-trip request takes
~5 ms in the process on 2 cores (``make bench`` measures it over HTTP).

With a ``ModelHolder``, the app also: starts and stops the holder's poller with its lifespan; routes each
request to the champion or, for a share of routing keys (``X-Routing-Key``, else the request id), the
challenger, and says which in the response (``variant``); adds the hot-swap status to ``/model``; and has
``POST /admin/reload`` (``taxi.admin``). A request reads ``holder.current`` once and uses that deployment
throughout, so a swap never splits a request between two models.

Hooks for what a level adds: ``on_predictions(request_id, served, trips, predictions, columns)`` is called after
each successful prediction (``trips``: ``Trip`` objects, or ``TripRow`` objects with the same attributes and values
when the compiled model answered; ``columns``: the batch as ``taxi.trip_columns.TripColumns`` when the compiled
model read it so, else None), on the request path (so it must only enqueue: level 4 logs predictions from a
queue); an exception it raises is logged and the prediction is answered all the same. ``workers`` are started and
stopped with the app (anything with ``start()`` and ``stop()``, e.g. that queue's writer thread). A level adds
routes to the returned app, and Prometheus collectors with ``app.state.metrics.add_collector``.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Annotated, Any, Protocol

import numpy as np
import pandas as pd
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field, NaiveDatetime, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass
from starlette.concurrency import run_in_threadpool

from taxi.admin import add_admin_routes
from taxi.body_limit import DEFAULT_BODY_TIMEOUT, BodyLimit, default_max_body_bytes
from taxi.fast_path import fast_path_for
from taxi.hotswap import Deployment, LoadedModel, ModelHolder
from taxi.inference import fast_path_of, predict_trips
from taxi.model import build_features
from taxi.service_metrics import CONTENT_TYPE, ServiceMetrics
from taxi.trip import DEFAULT_MAX_BATCH, EARLIEST, LATEST, Trip
from taxi.trip_columns import TripColumns

log = logging.getLogger("taxi.serving")
ROUTING_HEADER = "X-Routing-Key"
_TRIPS = TypeAdapter(list[Trip])


class ServedModel(Protocol):
    def predict(self, frame: pd.DataFrame) -> np.ndarray: ...

    def describe(self) -> dict[str, Any]: ...


class SklearnModel:
    """A fitted scikit-learn pipeline over ``taxi.model`` features, plus what to say about it.

    ``fast_path`` is the pipeline compiled by ``taxi.fast_path`` (checked against the pipeline when the model
    is made), or None when it does not compile; ``describe()["serving_path"]`` says which serves and why."""

    def __init__(self, pipeline: Any, info: dict[str, Any]):
        self.pipeline = pipeline
        self.info = info
        self.fast_path, self.serving_path = fast_path_for(pipeline, features=True)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.pipeline.predict(build_features(frame)), dtype="float64")

    def describe(self) -> dict[str, Any]:
        return {**self.info, "serving_path": self.serving_path}


class PredictResponse(BaseModel):
    predictions: list[float] = Field(description="predicted trip durations, minutes, in request order")
    model_version: str = Field(description="version of the model that answered")
    request_id: str
    variant: str | None = Field(
        default=None, description="which variant answered: champion or challenger (services with hot swap)"
    )


PredictionsHook = Callable[[str, LoadedModel, Sequence[Any], np.ndarray, "TripColumns | None"], None]


class Worker(Protocol):
    """Something that runs beside the app (a thread): started after the model is loaded, stopped at shutdown."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class Health(BaseModel):
    status: str
    model_version: str


def new_request_id() -> str:
    """A new request id: 32 hex digits in UUIDv7's layout (RFC 9562: 48 bits of Unix milliseconds, then random
    bits), so ids sort by the time they were made. A store that indexes request ids (level 4's prediction log)
    then adds each new one at the end of its index instead of anywhere in it: with random (UUIDv4) ids, SQLite's
    insert cost twice as much processor time at 200k logged requests, and kept growing with the table."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")  # 80 random bits: 12 for rand_a, 62 for rand_b, 6 unused
    value = (millis & (1 << 48) - 1) << 80 | 0x7 << 76 | (rand >> 62 & 0xFFF) << 64 | 0b10 << 62 | rand & (1 << 62) - 1
    return f"{value:032x}"


def _problem(status: int, errors: list[dict[str, Any]], request_id: str) -> JSONResponse:
    return JSONResponse({"detail": errors}, status_code=status, headers={"X-Request-ID": request_id})


def _clean_errors(exc: ValidationError, prefix: tuple[Any, ...]) -> list[dict[str, Any]]:
    """pydantic errors -> [{loc, msg, type}] (no echoed input: it may hold NaN, which JSON cannot carry)."""
    return [{"loc": [*prefix, *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]


def parse_trips(payload: Any, max_batch: int) -> tuple[list[Trip] | None, int, list[dict[str, Any]]]:
    """A JSON payload -> (trips, 200, []) or (None, status, errors)."""
    if isinstance(payload, list):
        if len(payload) > max_batch:
            msg = f"too many trips: {len(payload)} in one request, the maximum is {max_batch}"
            return None, 413, [{"loc": ["body"], "msg": msg, "type": "too_large"}]
        if not payload:
            return None, 422, [{"loc": ["body"], "msg": "the list of trips is empty", "type": "too_short"}]
        try:
            return _TRIPS.validate_python(payload), 200, []
        except ValidationError as exc:
            return None, 422, _clean_errors(exc, ("body",))
    if isinstance(payload, dict):
        try:
            return [Trip.model_validate(payload)], 200, []
        except ValidationError as exc:
            return None, 422, _clean_errors(exc, ("body",))
    msg = "the body must be a trip object or a list of trips"
    return None, 422, [{"loc": ["body"], "msg": msg, "type": "model_type"}]


def batch_adapter(max_batch: int) -> TypeAdapter:
    """Validates a JSON list of 1..``max_batch`` trips straight from the bytes (pydantic parses and checks in
    one pass, and stops counting at the limit)."""
    return TypeAdapter(Annotated[list[Trip], Field(min_length=1, max_length=max_batch)])


def _trip_row_class() -> type | None:
    """``TripRow``, made from ``Trip``'s fields; None when ``Trip`` checks a field in Python that this does not
    know of (then every batch is validated as ``Trip`` objects)."""
    decorators = Trip.__pydantic_decorators__
    in_python = [d.info.fields for d in decorators.field_validators.values()]
    if in_python != [("lpep_pickup_datetime",)] or decorators.model_validators or decorators.validators:
        return None
    namespace: dict[str, Any] = {"__annotations__": {}, "__module__": __name__}
    for name, info in Trip.model_fields.items():
        kind = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        if name == "lpep_pickup_datetime":  # Trip's rule for a naive time; an aware one is refused (Trip converts it)
            kind = Annotated[NaiveDatetime, Field(ge=EARLIEST, lt=LATEST)]
        namespace["__annotations__"][name] = kind
        if not info.is_required():
            namespace[name] = info.default
    doc = """A trip of a batch as the compiled model reads it: ``Trip``'s fields, types and limits (taken from
    ``Trip``) in a slotted dataclass that pydantic-core validates alone, with no Python call per trip.

    Cheaper than ``Trip`` objects: no ``__dict__`` or fields-set per trip, a third less validation time and less
    work for the garbage collector. Where it would differ, it refuses: a pickup time with a time zone (``Trip``
    converts it to New York time) fails, and the batch is validated again as ``Trip`` objects, so the answer is
    always ``Trip``'s. The compiled model (``taxi.fast_path``) and the ``on_predictions`` hook read rows by
    attribute, as they would read ``Trip`` objects; the pipeline gets ``Trip`` objects."""
    return pydantic_dataclass(type("TripRow", (), namespace | {"__doc__": doc}), slots=True)


TripRow = _trip_row_class()


def row_adapter(max_batch: int) -> TypeAdapter | None:
    """``batch_adapter`` for ``TripRow`` objects (None when there is no ``TripRow``)."""
    if TripRow is None:
        return None
    return TypeAdapter(Annotated[list[TripRow], Field(min_length=1, max_length=max_batch)])


def parse_body(
    body: bytes, batch: TypeAdapter, max_batch: int, rows: TypeAdapter | None = None
) -> tuple[Sequence[Trip] | None, int, list[dict[str, Any]]]:
    """A request body -> (trips, 200, []) or (None, status, errors).

    A valid body is parsed and validated by pydantic in one pass (``batch``: ``batch_adapter(max_batch)``; a
    list, as ``TripRow`` objects first when ``rows`` is ``row_adapter(max_batch)``); a body they refuse is read
    again with ``json.loads`` and ``parse_trips``, which give the answer a client can act on (413 for too many
    trips, the empty list, malformed JSON, NaN named by its field)."""
    head = body.lstrip()[:1]
    try:
        if head == b"{":
            return [Trip.model_validate_json(body)], 200, []
        if head == b"[":
            if rows is not None:
                try:
                    return rows.validate_json(body), 200, []
                except ValidationError:
                    pass  # a time zone, or a mistake: Trip's rules decide
            return batch.validate_json(body), 200, []
    except ValidationError:
        pass
    try:
        payload = json.loads(body)  # NaN/Infinity parse, then fail validation
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        return None, 422, [{"loc": ["body"], "msg": f"invalid JSON: {reason}", "type": "json_invalid"}]
    return parse_trips(payload, max_batch)


class RequestLog:
    """ASGI middleware: gives every HTTP request an id (``X-Request-ID``, or a new one) in ``request.state``
    and on the response, logs it as one JSON line and counts it in the app's metrics.

    Plain ASGI rather than ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware runs the endpoint in a
    task group with a streamed response, which costs more than the compiled model's whole prediction."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1") or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        start = time.perf_counter()

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                existing = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message["headers"] = [*existing, (b"x-request-id", request_id.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            if log.isEnabledFor(logging.INFO):
                record = {
                    "event": "request",
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                }
                log.info(json.dumps(record))
            metrics = scope["app"].state.metrics if "app" in scope else None
            if metrics is not None:
                template = getattr(scope.get("route"), "path", "unmatched")
                metrics.observe_request(scope["method"], template, status, seconds)


def _request_body_schema(max_batch: int) -> dict[str, Any]:
    trip = Trip.model_json_schema()
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"oneOf": [trip, {"type": "array", "items": trip, "minItems": 1, "maxItems": max_batch}]},
                "example": trip["examples"][0],
            }
        },
    }


def create_app(
    model: ServedModel | ModelHolder,
    *,
    max_batch: int = DEFAULT_MAX_BATCH,
    title: str = "NYC green-taxi trip duration",
    description: str = "Predicts trip duration in minutes for NYC green-taxi trips.",
    admin_token: str | None = None,
    metrics: bool = True,
    model_details: Callable[[Deployment], dict[str, Any]] | None = None,
    on_predictions: PredictionsHook | None = None,
    workers: Sequence[Worker] = (),
    max_body_bytes: int | None = None,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
) -> FastAPI:
    """The service for one fixed ``model``, or for a ``ModelHolder`` (hot swap, canary, ``/admin/reload``).

    ``app.state.holder`` is what answers (a fixed model is wrapped in ``ModelHolder.fixed``);
    ``app.state.metrics`` is the ``ServiceMetrics`` (None when ``metrics`` is False: no ``/metrics``).
    ``admin_token`` enables ``POST /admin/reload`` on a reloadable holder (see ``taxi.admin``).
    ``model_details(deployment)`` adds keys to ``/model`` on a hot-swapping service (a level's own facts,
    e.g. the deployment events of the versions it serves).
    ``on_predictions`` and ``workers``: see the module doc.
    ``max_body_bytes`` (None: ``default_max_body_bytes(max_batch)``) and ``body_timeout`` (seconds) bound every
    request body (``taxi.body_limit``: 413 and 408); ``app.state.max_body_bytes`` and ``app.state.body_timeout``
    are the limits in force.
    """
    hot = isinstance(model, ModelHolder)
    holder = model if isinstance(model, ModelHolder) else ModelHolder.fixed(model)
    app = FastAPIOffline(  # /docs and /redoc with their assets served here, not from a CDN
        title=title, description=description, version="1.0", lifespan=_poller_lifespan(holder, workers)
    )
    app.state.holder = holder
    app.state.max_batch = max_batch
    max_body_bytes = default_max_body_bytes(max_batch) if max_body_bytes is None else max_body_bytes
    app.state.max_body_bytes, app.state.body_timeout = max_body_bytes, body_timeout
    batch, rows = batch_adapter(max_batch), row_adapter(max_batch)
    app.state.metrics = ServiceMetrics(holder) if metrics else None

    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, timeout=body_timeout)
    app.add_middleware(RequestLog)  # added last: outermost, so a 408/413 of BodyLimit is logged and counted too

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        request_id = getattr(request.state, "request_id", "")
        log.exception("unhandled error for request %s", request_id)
        body = {"detail": "internal error", "request_id": request_id}
        return JSONResponse(body, status_code=500, headers={"X-Request-ID": request_id})

    @app.post(
        "/predict",
        response_model=PredictResponse,
        response_model_exclude_none=True,
        summary="Predict trip duration (minutes) for one trip or a list of trips",
        openapi_extra={"requestBody": _request_body_schema(max_batch)},
        responses={
            408: {"description": f"the body was not received within {body_timeout:g} s"},
            413: {"description": f"more than {max_batch} trips, or a body over {max_body_bytes} bytes"},
            422: {"description": "invalid trip"},
            503: {"description": "no model loaded yet"},
        },
    )
    async def predict(request: Request):
        request_id = request.state.request_id
        deployment: Deployment | None = request.app.state.holder.current  # read once: this request's models
        served = deployment.pick(request.headers.get(ROUTING_HEADER) or request_id) if deployment else None
        fast = fast_path_of(served.model) if served is not None else None
        # TripRow objects where the compiled model answers (the hook reads the same attributes); Trip for the pipeline
        trips, status, errors = parse_body(
            await request.body(), batch, request.app.state.max_batch, rows if fast is not None else None
        )
        if trips is None:
            return _problem(status, errors, request_id)
        if served is None:
            return _no_model(request.app.state.holder, request_id)
        metrics: ServiceMetrics | None = request.app.state.metrics
        start = time.perf_counter()
        columns: TripColumns | None = None  # a batch as the compiled model reads it; the hook gets it too
        try:
            if fast is not None and len(trips) > 1:  # microseconds a trip: no thread hop
                columns = TripColumns.of(trips)
                predictions = fast.predict_columns(columns)
            elif fast is not None:
                predictions = fast.predict_trips(trips)
            else:  # the pipeline: milliseconds, off the event loop
                predictions = await run_in_threadpool(predict_trips, served.model, trips)
        except Exception:  # answered here, not re-raised: uvicorn drops the keep-alive connection on a raised error
            log.exception("model %s (%s) failed on request %s", served.version, served.variant, request_id)
            if metrics is not None:
                metrics.observe_predict_error(served.variant, served.version)
            body = {"detail": "the model failed on this request", "request_id": request_id}
            return JSONResponse(body | {"model_version": served.version, "variant": served.variant}, status_code=500)
        if metrics is not None:
            metrics.observe_predictions(served.variant, served.version, predictions, time.perf_counter() - start)
        if on_predictions is not None:
            try:
                on_predictions(request_id, served, trips, predictions, columns)
            except Exception:  # what a level does with a prediction never costs the client its answer
                log.exception("on_predictions failed for request %s", request_id)
        answer = PredictResponse(
            predictions=predictions.tolist(),
            model_version=served.version,
            request_id=request_id,
            variant=served.variant if hot else None,
        )  # serialised here (pydantic, in Rust) rather than by FastAPI's generic response encoder
        return Response(answer.model_dump_json(exclude_none=True), media_type="application/json")

    @app.get(
        "/health",
        response_model=Health,
        summary="Liveness and the loaded model version",
        responses={503: {"description": "no model loaded yet"}},
    )
    async def health(request: Request) -> Any:
        deployment: Deployment | None = request.app.state.holder.current
        if deployment is None:
            return _no_model(request.app.state.holder, request.state.request_id)
        return Health(status="ok", model_version=deployment.champion.version)

    @app.get("/model", summary="What model is loaded: name, version, metadata (and, with hot swap, its status)")
    async def model_info(request: Request) -> Any:
        holder: ModelHolder = request.app.state.holder
        deployment = holder.current
        if not hot:
            return deployment.champion.model.describe() if deployment else {}
        if deployment is None:
            return JSONResponse({"detail": "no model loaded yet", "hot_swap": holder.describe_status()}, 503)
        return {
            **deployment.champion.describe(),
            "challenger": deployment.challenger.describe() if deployment.challenger else None,
            "hot_swap": holder.describe_status(),
            **(model_details(deployment) if model_details else {}),
        }

    if metrics:

        @app.get("/metrics", summary="Prometheus metrics (text exposition format)", response_class=PlainTextResponse)
        async def prometheus_metrics(request: Request) -> Response:
            return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)

    if holder.reloadable:
        add_admin_routes(app, holder, admin_token)
    return app


def _poller_lifespan(holder: ModelHolder, workers: Sequence[Worker] = ()) -> Callable[[FastAPI], Any]:
    """Start the holder's poller (loading the first model if none is yet) and the ``workers`` with the app, and
    stop them after (the workers last: they may still have the last requests' work to finish)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if holder.reloadable and holder.current is None:
            await run_in_threadpool(holder.poll)
        holder.start()
        for worker in workers:
            worker.start()
        try:
            yield
        finally:
            await run_in_threadpool(holder.stop)
            for worker in workers:
                await run_in_threadpool(worker.stop)

    return lifespan


def _no_model(holder: ModelHolder, request_id: str) -> JSONResponse:
    reason = holder.status.last_error or "the first poll has not finished"
    body = {"detail": f"no model loaded yet: {reason}", "request_id": request_id}
    return JSONResponse(body, status_code=503, headers={"X-Request-ID": request_id})


def run_service(
    create: Callable[[], FastAPI], host: str, port: int, cannot_start: tuple[type[Exception], ...] = ()
) -> int:
    """Build the app and serve it with uvicorn; an expected start-up failure is one clear line, exit 1.

    Once the app is built (libraries imported, the first model loaded), everything alive is frozen out of the
    garbage collector's sight (``gc.freeze``): a batch request allocates thousands of objects, which trigger
    collections, and a full collection would otherwise walk the hundreds of thousands of objects of the
    libraries each time (~0.1-0.3 s on 2 cores, every few dozen batches). What is frozen is never collected
    as cyclic garbage: at most the objects of the first model, once swapped out."""
    configure_request_logging()
    try:
        app = create()
    except cannot_start as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    gc.freeze()
    uvicorn.run(app, host=host, port=port, access_log=False)
    return 0


def configure_request_logging(level: int = logging.INFO) -> None:
    """Send the service's JSON request lines to stderr (call once at start-up, not at import)."""
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False


@contextmanager
def serve_in_thread(app: FastAPI, host: str = "127.0.0.1", timeout: float = 30.0) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free port of ``host``, in a thread; yields its base URL and stops it
    (lifespan included) on exit. For tests and tools that need the real HTTP stack in-process."""
    sock = socket.socket()
    sock.bind((host, 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"uvicorn did not start within {timeout:.0f} s")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
        if thread.is_alive():
            raise RuntimeError("uvicorn did not stop")
