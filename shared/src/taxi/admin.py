"""The service's admin route: ``POST /admin/reload`` polls the registry and swaps now (extra: ``serving``).

Authentication is a bearer token from the service's settings (``Authorization: Bearer <token>``), compared
in constant time. Answers, none of which reveal anything about the token:

- no token configured: **403** ``admin endpoints are disabled: the service has no admin token configured``
  (the endpoint exists but cannot be used; configure a token to enable it);
- no ``Authorization: Bearer`` header: **401** ``missing bearer token`` with ``WWW-Authenticate: Bearer``;
- a wrong token: **403** ``invalid token``;
- the right token: the poll runs (in a worker thread; requests keep being served meanwhile), then **200**
  with ``changed`` and the hot-swap status, or **503** with the same body when the poll failed (the
  current model keeps serving; ``hot_swap.last_error`` says why).

Only the first three never poll. The route exists only on apps serving a reloadable ``ModelHolder``.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import FastAPI, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from taxi.hotswap import ModelHolder

DISABLED = "admin endpoints are disabled: the service has no admin token configured"
_bearer = HTTPBearer(auto_error=False, description="the service's admin token")


def token_matches(given: str, expected: str) -> bool:
    """``given == expected`` in time independent of where they differ (``hmac.compare_digest``)."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def refusal(credentials: HTTPAuthorizationCredentials | None, token: str | None) -> JSONResponse | None:
    """The response refusing an admin call, or None when the call carries the configured token."""
    if not token:
        return JSONResponse({"detail": DISABLED}, status_code=403)
    if credentials is None or not credentials.credentials:
        return JSONResponse({"detail": "missing bearer token"}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
    if not token_matches(credentials.credentials, token):
        return JSONResponse({"detail": "invalid token"}, status_code=403)
    return None


def add_admin_routes(app: FastAPI, holder: ModelHolder, token: str | None) -> None:
    """Add ``POST /admin/reload`` to ``app`` (see module doc)."""

    @app.post(
        "/admin/reload",
        summary="Poll the registry now and swap to the versions it names (needs the admin bearer token)",
        responses={
            401: {"description": "no bearer token"},
            403: {"description": "wrong token, or no admin token configured (endpoint disabled)"},
            503: {"description": "the reload failed; the current model keeps serving"},
        },
    )
    async def reload(credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]) -> Any:
        refused = refusal(credentials, token)
        if refused is not None:
            return refused
        changed = await run_in_threadpool(holder.poll)
        ok = bool(holder.status.last_poll_ok)
        body = {"changed": changed, "ok": ok, "hot_swap": holder.describe_status()}
        return JSONResponse(body, status_code=200 if ok else 503)
