"""Request body limits of the Lifecycle API: small for JSON routes, larger where files travel.

The limit of a request is found from its path alone, before anything is read. A body that
declares a larger ``Content-Length`` is answered 413 at once, without reading a byte of it; a
body sent in chunks is counted as it arrives and cut off with 413 as soon as it passes the
limit. The server then closes the connection, so nothing beyond the limit is ever kept.

==========================================  ===============================================
route                                       limit
==========================================  ===============================================
``POST /api/v1/deploy``                     the build context's limit as base64, plus 16 MiB
``POST /api/v1/plugin/upload/{filename}``   the wheel limit (50 MiB)
``/api/v1/async/...`` (Pub only)            64 MiB: a call's body and answer, base64
everything else                             1 MiB
==========================================  ===============================================
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from racetrack_core.lifecycle.responses import PayloadTooLarge, error_answer
from racetrack_core.settings import Settings
from racetrack_core.wire import MAX_WHEEL_BYTES

MiB = 1024 * 1024
JSON_BODY_LIMIT = 1 * MiB
"""Every route that takes a small JSON object: logins, tokens, grants, redeploys..."""
ASYNC_BODY_LIMIT = 64 * MiB
"""Pub's asynchronous-call records: up to 16 MiB of body and answer each, as base64."""
DEPLOY_MARGIN = 16 * MiB
"""Room for the manifest and secrets next to the build context, and for a context a little
over its limit, which is then refused with its real size rather than by this limit."""


def deploy_body_limit(settings: Settings) -> int:
    """Largest ``POST /deploy`` body: a build context of the largest size, base64-encoded."""
    return -(-settings.build_context_max_bytes // 3) * 4 + DEPLOY_MARGIN


def body_limit(path: str, settings: Settings) -> int:
    """The largest body accepted on ``path`` (with or without the ``/lifecycle`` prefix)."""
    path = path.removeprefix("/lifecycle")
    if path.rstrip("/") == "/api/v1/deploy":
        return deploy_body_limit(settings)
    if path.startswith("/api/v1/plugin/upload/"):
        return MAX_WHEEL_BYTES
    if path.startswith("/api/v1/async/"):
        return ASYNC_BODY_LIMIT
    return JSON_BODY_LIMIT


class BodyLimit:
    """ASGI middleware that enforces :func:`body_limit` on every HTTP request."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["path"], self.settings)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(limit, scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(_sentence(limit))
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except PayloadTooLarge:
            if started:
                raise
            await _refuse(limit, scope, receive, send)


def _sentence(limit: int) -> str:
    size = f"{limit / MiB:g} MiB" if limit >= MiB else f"{limit} bytes"
    return f"the request body is too large: this route takes at most {size}"


async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    answer = error_answer(PayloadTooLarge.status, _sentence(limit), PayloadTooLarge.kind)
    answer.headers["Connection"] = "close"
    await answer(scope, receive, send)
