"""Bounded request bodies: a size limit checked before a body is read whole, and a time limit to send it.

    app.add_middleware(BodyLimit, max_bytes=default_max_body_bytes(max_batch), timeout=DEFAULT_BODY_TIMEOUT)

A pure ASGI middleware (no BaseHTTPMiddleware: that would cost more than a prediction). It wraps ``receive``,
so every route that reads a body is bounded, however it reads it (``await request.body()``, FastAPI's own body
parameters):

- **413** when ``Content-Length`` says more than ``max_bytes``: answered at the route's first read, before a byte
  of the body is received;
- **413** when a body without ``Content-Length`` (chunked) passes ``max_bytes``: counted chunk by chunk as the
  server receives them, answered at the chunk that passes the limit (so at most ``max_bytes`` plus one chunk is
  ever held per request, whatever the client sends);
- **408** when the body is not complete ``timeout`` seconds after the request arrived (a slow or never-ending
  body), so no request waits on its client for ever.

The answer is the services' problem format, naming the limit: ``{"detail": [{"loc": ["body"], "msg": ...,
"type": "too_large" | "timeout"}]}``, with ``Connection: close``: the server stops reading what is left of that
body instead of receiving it for nothing (RFC 9110 §15.5.9 and §15.5.14). A request with neither
``Content-Length`` nor ``Transfer-Encoding`` has no body and passes untouched; one whose body fits costs a length
comparison per chunk and one timer while its body arrives (nothing per byte in Python).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, NoReturn

DEFAULT_BODY_TIMEOUT = 5.0  # seconds a client has to send a whole request body
BYTES_PER_TRIP = 1024  # a trip is ~130 bytes of compact JSON (~160 indented): room for any formatting
BODY_HEADROOM = 1 << 20  # 1 MiB beyond the trips: other bodies of the same service (e.g. 10,000 feedback items)


def default_max_body_bytes(max_batch: int) -> int:
    """The default body limit for a service taking up to ``max_batch`` trips a request: 1 KiB a trip + 1 MiB
    (2,072,576 bytes for 1000 trips; a 1000-trip batch is ~130 kB of compact JSON)."""
    return BODY_HEADROOM + BYTES_PER_TRIP * max_batch


class BodyRejected(Exception):
    """Raised into the app from ``receive`` when its request broke a limit, once the 408/413 is sent (or when it
    cannot be: the app had begun its own answer)."""


class BodyLimit:
    """ASGI middleware: at most ``max_bytes`` of request body, all of it within ``timeout`` seconds of the request's
    arrival (see the module doc)."""

    def __init__(self, app: Any, max_bytes: int, timeout: float = DEFAULT_BODY_TIMEOUT):
        if max_bytes < 1 or timeout <= 0:
            raise ValueError(f"max_bytes must be >= 1 and timeout > 0, not {max_bytes} and {timeout}")
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: int | None = None
        has_body = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                has_body = True
                try:
                    declared = int(value)
                except ValueError:  # the server refuses such a request before the app sees it
                    declared = None
            elif name == b"transfer-encoding":
                has_body = True
        if not has_body:
            await self.app(scope, receive, send)
            return

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        received = 0
        body_done = False
        started = False
        rejected = False

        async def reject(status: int, msg: str, kind: str) -> NoReturn:
            nonlocal rejected
            if started:  # the app began its answer before reading the body: too late for ours, the app fails
                raise BodyRejected(msg)
            rejected = True
            body = json.dumps({"detail": [{"loc": ["body"], "msg": msg, "type": kind}]}, separators=(",", ":")).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            raise BodyRejected(msg)

        async def bounded_receive() -> dict[str, Any]:
            nonlocal received, body_done
            if body_done:  # after the body: http.disconnect, which may be awaited for as long as a response takes
                return await receive()
            if rejected:
                return {"type": "http.disconnect"}
            if declared is not None and declared > self.max_bytes:
                await reject(
                    413,
                    f"request body too large: Content-Length is {declared} bytes, "
                    f"the limit is {self.max_bytes} bytes (max_body_bytes)",
                    "too_large",
                )
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                await reject(
                    408,
                    f"request body not received in time: the limit is {self.timeout:g} s to send the whole body "
                    f"(body_timeout); {received} bytes arrived",
                    "timeout",
                )
            if message["type"] != "http.request":
                body_done = True
                return message
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                await reject(
                    413,
                    f"request body too large: more than {self.max_bytes} bytes received, "
                    f"the limit is {self.max_bytes} bytes (max_body_bytes)",
                    "too_large",
                )
            if not message.get("more_body", False):
                body_done = True
            return message

        async def tracked_send(message: dict[str, Any]) -> None:
            nonlocal started
            if rejected:  # the limit's answer was sent: the app's own (if it caught BodyRejected) is dropped
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, bounded_receive, tracked_send)
        except BodyRejected:
            if not rejected:  # see reject: the app's answer had begun
                raise
