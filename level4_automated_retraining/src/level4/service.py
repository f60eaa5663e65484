"""The level 4 service: level 3's service (``@champion`` + ``@challenger``, hot swap) + prediction logging +
feedback + their metrics.

- **prediction logging**: ``taxi.serving.create_app(on_predictions=log.record, workers=[log])``: after every
  answered request the service queues its trips and predictions; ``level4.prediction_log`` writes them to the
  prediction store off the request path.
- **feedback**: ``POST /feedback`` (one item or a list: ``level4.feedback``) joins true durations to the
  logged predictions by request id: 200 when every item is stored; otherwise nothing is stored and the answer
  names each item's problem: 422 a bad value, 404 an unknown request id, 409 feedback given before. Its body
  has the service's limits (``taxi.body_limit``: ``max_body_bytes``, 413; ``body_timeout``, 408), like
  ``POST /predict``'s, checked before it is read whole; then 413 above ``MAX_ITEMS`` items. Feedback decides
  what the model is retrained on, so with ``feedback_token`` set it needs ``Authorization: Bearer <token>``
  (401 without, 403 wrong: ``taxi.admin.refusal``); unset, it is open to whoever reaches the service, which
  ``level4 serve`` allows on a loopback interface only.
- **metrics**: ``/metrics`` gains ``taxi_prediction_log_*`` (written, dropped by reason, queued, lag) and
  ``taxi_feedback_total{outcome}``.

**The switch** ``LEVEL4_PREDICTION_LOG=false`` (``Settings.prediction_log``; default true) serves without any of
the three: exactly level 3's service. No prediction store is opened, ``POST /feedback`` does not exist (404:
there is nothing to join feedback to), ``/metrics`` has no ``taxi_prediction_log_*`` or ``taxi_feedback_*``
series, and ``app.state.prediction_log`` / ``app.state.store`` are None. It is there to measure what logging
costs (``make bench``) and for a replica that only answers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

# before the modules that import MLflow: taxi.tracking imports skops first (after MLflow, seconds slower)
import taxi.tracking  # noqa: F401  # isort: split
from level4.feedback import FEEDBACK_LIST, MAX_ITEMS, Feedback, FeedbackOutcome, feedback_counter, record_feedback
from level4.prediction_log import PredictionLog, PredictionLogCollector, PredictionStore, sqlite_path
from level4.settings import Settings
from taxi.admin import refusal
from taxi.deployment.deployer import DeploymentLog, deployment_details
from taxi.hotswap import ModelHolder
from taxi.registry_serving import settings_holder
from taxi.serving import create_app as create_service

FLUSH_BEFORE_FEEDBACK_SECONDS = 5.0  # feedback right after a prediction: let the writer store it first
_feedback_bearer = HTTPBearer(auto_error=False, scheme_name="FeedbackToken", description="the feedback token")


def prediction_store(url: str, base: Path = Path()) -> PredictionStore:
    """The store at ``url``; a relative sqlite path is taken in ``base``, and its folder made if missing."""
    path = sqlite_path(url)
    if path is not None and not path.is_absolute():
        path = (base / path).resolve()
        url = f"sqlite:///{path}"
    if path is not None and not path.parent.exists():
        path.parent.mkdir(parents=True)
    return PredictionStore(url)


def create_app(
    settings: Settings | None = None, holder: ModelHolder | None = None, store: PredictionStore | None = None
) -> FastAPI:
    """The service for ``settings`` (default: from the environment), on ``holder`` (default: the registry's
    ``@champion`` / ``@challenger``), logging to ``store`` (default: ``settings.prediction_store``) unless
    ``settings.prediction_log`` is off (see module doc)."""
    settings = settings or Settings()
    holder = holder or settings_holder(settings)
    store = (store or prediction_store(settings.prediction_store)) if settings.prediction_log else None
    log = None
    logs = "prediction logging is off (LEVEL4_PREDICTION_LOG=false)"
    if store is not None:
        log = PredictionLog(store, max_queue_rows=settings.log_queue_rows, batch_rows=settings.log_batch_rows)
        logs = f"logs every prediction to {store.describe()} and takes the true durations at POST /feedback"
    app = create_service(
        holder,
        max_batch=settings.max_batch,
        max_body_bytes=settings.max_body_bytes,
        body_timeout=settings.body_timeout,
        title="Trip duration - level 4",
        description=f"Serves models:/{settings.model_name}@champion (and @challenger on "
        f"{holder.challenger_share:.0%} of traffic), swapping versions as the registry aliases move; {logs}.",
        admin_token=settings.token,
        model_details=deployment_details(DeploymentLog(settings.deploy_log), settings.model_name),
        on_predictions=log.record if log is not None else None,
        workers=[log] if log is not None else (),
    )
    app.state.prediction_log = log
    app.state.store = store
    if store is None or log is None:  # the switch is off: level 3's service
        return app
    counter = feedback_counter()
    if app.state.metrics is not None:
        app.state.metrics.add_collector(PredictionLogCollector(log))
        app.state.metrics.add_collector(counter)
    add_feedback_route(app, store, log, counter, settings.feedback_token.get_secret_value() or None)
    return app


def _answer(status: int, body: dict[str, Any], request_id: str) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={"X-Request-ID": request_id})


def _problems(outcome: FeedbackOutcome, items: list[Feedback], single: bool) -> tuple[int, list[dict[str, Any]]]:
    """The status and the items' problems: 422 bad values first, then 404 unknown ids, then 409 duplicates."""

    def loc(position: int, name: str) -> list[Any]:
        return ["body", name] if single else ["body", position, name]

    if outcome.invalid:
        return 422, [{"loc": loc(p, f), "msg": why, "type": "value_error"} for p, f, why in outcome.invalid]
    if outcome.unknown:
        return 404, [
            {
                "loc": loc(p, "request_id"),
                "msg": f"no logged prediction has request id {items[p].request_id!r} and index {items[p].index}",
                "type": "unknown_request",
            }
            for p in outcome.unknown
        ]
    return 409, [
        {"loc": loc(p, "request_id"), "msg": f"duplicate: {why}", "type": "duplicate"} for p, why in outcome.duplicate
    ]


async def _no_credentials() -> None:
    return None


def add_feedback_route(
    app: FastAPI, store: PredictionStore, log: PredictionLog, counter: Any, token: str | None = None
) -> None:
    """``POST /feedback``: one feedback item or a list; with ``token``, only for callers bearing it (module doc)."""
    trip_schema = Feedback.model_json_schema()
    # the bearer token is read (and documented in the OpenAPI) only when one is required
    bearer = Security(_feedback_bearer) if token else Depends(_no_credentials)
    refusals = {401: {"description": "no bearer token"}, 403: {"description": "wrong token"}} if token else {}

    @app.post(
        "/feedback",
        summary="The true duration of predicted trips, joined to the logged predictions by request id",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"oneOf": [trip_schema, {"type": "array", "items": trip_schema, "minItems": 1}]},
                        "example": trip_schema["examples"][0],
                    }
                },
            }
        },
        responses={
            200: {"description": "every item stored"},
            404: {"description": "an unknown request id (nothing stored)"},
            408: {"description": f"the body was not received within {app.state.body_timeout:g} s"},
            409: {"description": "feedback for a trip given before (nothing stored)"},
            413: {"description": f"more than {MAX_ITEMS} items, or a body over {app.state.max_body_bytes} bytes"},
            422: {"description": "a bad value (nothing stored)"},
            503: {"description": "the prediction store cannot be reached"},
            **refusals,
        },
    )
    async def feedback(request: Request, credentials: HTTPAuthorizationCredentials | None = bearer) -> JSONResponse:
        request_id = request.state.request_id
        if token and (refused := refusal(credentials, token)) is not None:
            refused.headers["X-Request-ID"] = request_id
            return refused
        try:
            payload = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            problem = {"loc": ["body"], "msg": f"invalid JSON: {exc}", "type": "json_invalid"}
            counter.labels("invalid").inc()
            return _answer(422, {"detail": [problem]}, request_id)
        single = isinstance(payload, dict)
        if isinstance(payload, list) and len(payload) > MAX_ITEMS:
            msg = f"too many feedback items: {len(payload)} in one request, the maximum is {MAX_ITEMS}"
            return _answer(413, {"detail": [{"loc": ["body"], "msg": msg, "type": "too_large"}]}, request_id)
        try:
            items = [Feedback.model_validate(payload)] if single else FEEDBACK_LIST.validate_python(payload)
        except ValidationError as exc:
            counter.labels("invalid").inc(1 if single else max(1, len(payload) if isinstance(payload, list) else 1))
            errors = [
                {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_input=False)
            ]
            return _answer(422, {"detail": errors}, request_id)
        if not items:
            problem = {"loc": ["body"], "msg": "the list of feedback items is empty", "type": "too_short"}
            return _answer(422, {"detail": [problem]}, request_id)
        await run_in_threadpool(log.flush, FLUSH_BEFORE_FEEDBACK_SECONDS)
        try:
            outcome = await run_in_threadpool(record_feedback, store, items, all_or_nothing=True)
        except SQLAlchemyError as exc:
            msg = f"the prediction store cannot be reached: {type(exc).__name__}"
            return _answer(503, {"detail": msg, "request_id": request_id}, request_id)
        for outcome_name, count in outcome.counts().items():
            if count:
                counter.labels(outcome_name).inc(count)
        if outcome.ok:
            return _answer(200, {"accepted": len(outcome.accepted), "request_id": request_id}, request_id)
        status, problems = _problems(outcome, items, single)
        return _answer(status, {"detail": problems, "stored": 0}, request_id)
