"""The FastAPI core every service level builds on (extra: ``taxi-shared[serving]``).

    app = create_app(model, max_batch=1000)

``model`` is anything with ``predict(frame) -> array`` (the frame has ``taxi.model.INPUT_COLUMNS``)
and ``describe() -> dict`` (what is loaded: name, version, metadata). Levels differ only in where that
object comes from (a handed-off file, the MLflow registry, a hot-swapping holder) and in what they add.

Routes: ``POST /predict`` (one trip or a list), ``GET /health``, ``GET /model``, docs at ``/docs``.
Client mistakes never give a 500: malformed JSON, a wrong type, a missing field, a negative distance,
NaN/inf, an unknown zone or a bad datetime give 422 with the field and the rule; more than
``max_batch`` trips give 413. Every response carries an ``X-Request-ID``, and each request is logged
as one JSON line on the ``taxi.serving`` logger.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from taxi.model import build_features
from taxi.trip import Trip, trips_to_frame

log = logging.getLogger("taxi.serving")
DEFAULT_MAX_BATCH = 1000
_TRIPS = TypeAdapter(list[Trip])


class ServedModel(Protocol):
    def predict(self, frame: pd.DataFrame) -> np.ndarray: ...

    def describe(self) -> dict[str, Any]: ...


class SklearnModel:
    """A fitted scikit-learn pipeline over ``taxi.model`` features, plus what to say about it."""

    def __init__(self, pipeline: Any, info: dict[str, Any]):
        self.pipeline = pipeline
        self.info = info

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.pipeline.predict(build_features(frame)), dtype="float64")

    def describe(self) -> dict[str, Any]:
        return self.info


class PredictResponse(BaseModel):
    predictions: list[float] = Field(description="predicted trip durations, minutes, in request order")
    model_version: str = Field(description="version of the model that answered")
    request_id: str


class Health(BaseModel):
    status: str
    model_version: str


def _version(model: ServedModel) -> str:
    return str(model.describe().get("version", "unknown"))


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
    model: ServedModel,
    *,
    max_batch: int = DEFAULT_MAX_BATCH,
    title: str = "NYC green-taxi trip duration",
    description: str = "Predicts trip duration in minutes for NYC green-taxi trips.",
) -> FastAPI:
    """The service. ``app.state.model`` is the object that answers; levels may replace it."""
    app = FastAPI(title=title, description=description, version="1.0")
    app.state.model = model
    app.state.max_batch = max_batch

    @app.middleware("http")
    async def request_id_and_log(request: Request, call_next):
        request_id = request.headers.get("X-Request-ID") or uuid.uuid4().hex
        request.state.request_id = request_id
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
        finally:
            record = {
                "event": "request",
                "request_id": request_id,
                "method": request.method,
                "path": request.url.path,
                "status": status,
                "duration_ms": round((time.perf_counter() - start) * 1000, 2),
            }
            log.info(json.dumps(record))
        response.headers["X-Request-ID"] = request_id
        return response

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        request_id = getattr(request.state, "request_id", "")
        log.exception("unhandled error for request %s", request_id)
        body = {"detail": "internal error", "request_id": request_id}
        return JSONResponse(body, status_code=500, headers={"X-Request-ID": request_id})

    @app.post(
        "/predict",
        response_model=PredictResponse,
        summary="Predict trip duration (minutes) for one trip or a list of trips",
        openapi_extra={"requestBody": _request_body_schema(max_batch)},
        responses={413: {"description": f"more than {max_batch} trips"}, 422: {"description": "invalid trip"}},
    )
    async def predict(request: Request):
        request_id = request.state.request_id
        try:
            payload = json.loads(await request.body())  # NaN/Infinity parse, then fail validation
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            return _problem(
                422, [{"loc": ["body"], "msg": f"invalid JSON: {reason}", "type": "json_invalid"}], request_id
            )
        trips, status, errors = parse_trips(payload, request.app.state.max_batch)
        if trips is None:
            return _problem(status, errors, request_id)
        served: ServedModel = request.app.state.model
        predictions = await run_in_threadpool(served.predict, trips_to_frame(trips))
        return PredictResponse(
            predictions=[float(p) for p in predictions], model_version=_version(served), request_id=request_id
        )

    @app.get("/health", response_model=Health, summary="Liveness and the loaded model version")
    async def health(request: Request) -> Health:
        return Health(status="ok", model_version=_version(request.app.state.model))

    @app.get("/model", summary="What model is loaded: name, version, metadata")
    async def model_info(request: Request) -> dict[str, Any]:
        return request.app.state.model.describe()

    return app


def run_service(
    create: Callable[[], FastAPI], host: str, port: int, cannot_start: tuple[type[Exception], ...] = ()
) -> int:
    """Build the app and serve it with uvicorn; an expected start-up failure is one clear line, exit 1."""
    import uvicorn

    configure_request_logging()
    try:
        app = create()
    except cannot_start as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
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
