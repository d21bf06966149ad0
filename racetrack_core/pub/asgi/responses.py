"""Pub's own answers: JSON with a Content-Type and a length, sent straight through ASGI."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from racetrack_core.pub.failures import JSON_TYPE, json_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
RawHeaders = list[tuple[bytes, bytes]]


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = JSON_TYPE,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Send a whole answer in one body message."""
    raw: RawHeaders = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    raw.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def send_json(
    send: Send, status: int, payload: object, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Send ``payload`` as a JSON answer."""
    await send_bytes(send, status, json_body(payload), JSON_TYPE, headers)
