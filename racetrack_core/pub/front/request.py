"""One request as the front server parsed it, and where its body goes once a call takes it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import httptools

from racetrack_core.http_heads import MAX_REQUEST_HEAD

#: Request body buffered before the call takes it; beyond this, reading pauses.
BODY_BUFFER = 65_536
#: A request line and headers longer than this get 431.
MAX_HEAD = MAX_REQUEST_HEAD


class BodySink(Protocol):
    """Where a request's body goes once the call has somewhere to send it."""

    def body(self, data: bytes) -> None: ...
    def end(self) -> None: ...
    def abandon(self) -> bool:
        """The rest of the body will never come (it was malformed): drop what waits for it.

        True if nothing of an answer has gone to the caller, who may still get Pub's error.
        """
        ...


class Request:
    """One parsed request, and what its answer needs to know about it."""

    __slots__ = (
        "body",
        "buffered",
        "chunked",
        "complete",
        "content_length",
        "discard",
        "expects_continue",
        "finished",
        "head_done",
        "headers",
        "http11",
        "keep_alive",
        "method",
        "on_gone",
        "on_writable",
        "path",
        "query",
        "received",
        "sink",
        "started",
        "websocket",
    )

    def __init__(self) -> None:
        self.method = ""
        self.path = ""
        self.query = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_done = False
        self.keep_alive = True
        self.http11 = True
        self.expects_continue = False
        self.content_length: int | None = None
        self.chunked = False
        #: ``Upgrade: websocket``: a handshake, for the ASGI app behind (after it, ``body`` and
        #: ``sink`` carry the caller's raw bytes).
        self.websocket = False
        self.body: list[bytes] = []
        self.buffered = 0
        self.received = 0
        #: The whole body has been read.
        self.complete = False
        #: The answer was given before the body was read: the rest is dropped.
        self.discard = False
        #: Bytes of the answer have left (or the request went to a job): no own error any more.
        self.started = False
        self.finished = False
        self.sink: BodySink | None = None
        self.on_gone: Callable[[], None] | None = None
        self.on_writable: Callable[[bool], None] | None = None

    def add_header(self, name: bytes, value: bytes) -> None:
        """Keep a header (its name lower-cased), noting what frames the body."""
        lowered = name.lower()
        self.headers.append((lowered, value))
        if lowered == b"content-length":
            self.content_length = int(value)
        elif lowered == b"transfer-encoding":
            self.chunked = b"chunked" in value.lower()
        elif lowered == b"upgrade":
            self.websocket = value.lower() == b"websocket"
        elif lowered == b"expect":
            self.expects_continue = value.lower() == b"100-continue"

    def take(self, data: bytes) -> bool:
        """Send body bytes on, or hold them for the sink to come; True when too many are held."""
        if self.discard or not data:
            return False
        if self.sink is not None:
            self.sink.body(data)
            return False
        self.body.append(data)
        self.buffered += len(data)
        return self.buffered > BODY_BUFFER

    def set_target(self, url: bytes) -> None:
        """Take the path and query from the request target (origin or absolute form)."""
        if not url.startswith(b"/"):
            parsed = httptools.parse_url(url)  # absolute form: http://host/path?query
            url = (parsed.path or b"/") + (b"?" + parsed.query if parsed.query else b"")
        path, _, self.query = url.partition(b"?")
        self.path = path.decode("latin-1")
