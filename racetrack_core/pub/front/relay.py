"""A request relayed to an upstream server, and its answer relayed back to the caller.

:class:`Relay` is what a job call and a call forwarded to the ASGI app have in common: the
request head and a body that arrived whole leave in one write; an answer with a small declared
length goes back in one write once complete; anything larger or unsized is streamed, both
ways, with back-pressure. A subclass says what to count when the answer begins, and which
error to give when the upstream server fails before answering.
"""

from __future__ import annotations

import logging
from typing import Generic, Protocol, TypeVar

from racetrack_core.pub.config import PubConfig
from racetrack_core.pub.front import wire
from racetrack_core.pub.front.connection import CallerConnection
from racetrack_core.pub.front.request import Request
from racetrack_core.pub.front.upstream import JobConnection
from racetrack_core.pub.headers import response_headers

logger = logging.getLogger("racetrack.pub")

#: Request headers the front server frames itself (the body's length, and 100-continue).
REFRAMED = frozenset({"content-length", "expect", "transfer-encoding"})
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS", "TRACE"})


class RelayGateway(Protocol):
    """What a relay needs from the server (a FastPub): its configuration."""

    @property
    def config(self) -> PubConfig: ...


G = TypeVar("G", bound=RelayGateway)


class Relay(Generic[G]):
    """Streams a request's body to an upstream connection and its answer back to the caller."""

    __slots__ = (
        "_base_url",
        "_buffered",
        "_chunked_body",
        "_chunked_out",
        "_conn",
        "_extra",
        "_gateway",
        "_head",
        "_parts",
        "_request",
        "_upstream",
    )

    def __init__(
        self,
        gateway: G,
        conn: CallerConnection,
        request: Request,
        extra: list[tuple[bytes, bytes]],
    ) -> None:
        self._gateway = gateway
        self._conn = conn
        self._request = request
        #: Headers added to the answer (the tracing id).
        self._extra = extra
        self._base_url = ""
        self._upstream: JobConnection | None = None
        self._buffered = True
        self._chunked_body = False
        self._chunked_out = False
        self._head = b""
        self._parts: list[bytes] = []

    # --- what a subclass decides -----------------------------------------------------------

    def answer_begins(self, status: int) -> None:
        """The upstream server's answer has begun with ``status`` (count it)."""

    def failed_before(self, kind: str, error: BaseException | None) -> None:
        """The upstream server failed before answering: give the caller Pub's error."""
        raise NotImplementedError

    def describe(self) -> str:
        """Who is upstream, for the log."""
        raise NotImplementedError

    # --- sending ---------------------------------------------------------------------------

    def frame(self, lines: list[str]) -> tuple[bytes, bool]:
        """The request head from ``lines`` (with the body when whole), and whether it streams."""
        request = self._request
        body = b""
        streamed = not request.complete
        if streamed and request.content_length is None:
            self._chunked_body = True
            lines.append("transfer-encoding: chunked")
        elif streamed:
            lines.append(f"content-length: {request.content_length}")
        else:
            body = b"".join(request.body)
            request.body = []
            if body or request.method not in _BODYLESS_METHODS:
                lines.append(f"content-length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body, streamed

    def send(self, upstream: JobConnection, base_url: str, head: bytes, streamed: bool) -> None:
        """Send the framed request on ``upstream`` (the rest of a streamed body follows)."""
        request = self._request
        self._upstream = upstream
        self._base_url = base_url
        request.started = True
        request.on_gone = self._caller_gone
        request.on_writable = self._caller_writable
        upstream.send(self, head, request.method == "HEAD", request_sent=not streamed)
        if streamed:
            self._conn.attach(request, self)

    # --- BodySink: the request body, towards the upstream server --------------------------

    def body(self, data: bytes) -> None:
        upstream = self._upstream
        if upstream is not None and data:
            upstream.write(wire.chunk(data) if self._chunked_body else data)

    def end(self) -> None:
        upstream = self._upstream
        if upstream is None:
            return
        if self._chunked_body:
            upstream.write(wire.LAST_CHUNK)
        upstream.request_sent = True

    def abandon(self) -> bool:
        # The upstream server is not at fault: drop its connection without counting an error.
        self._caller_gone()
        return self._buffered

    # --- AnswerSink: the answer, towards the caller ---------------------------------------

    def on_head(
        self, status: int, headers: list[tuple[bytes, bytes]], length: int | None, chunked: bool
    ) -> None:
        request = self._request
        self.answer_begins(status)
        out = response_headers(tuple(headers), self._base_url)
        out.extend(self._extra)
        bodyless = request.method == "HEAD" or status in (204, 304)
        if bodyless or (length is not None and length <= self._gateway.config.buffer_limit):
            self._head = bytes(wire.head(status, out, request.keep_alive))
            return
        self._buffered = False
        keep_alive = request.keep_alive
        if length is None:
            if request.http11:
                out.append((b"transfer-encoding", b"chunked"))
                self._chunked_out = True
            else:
                keep_alive = request.keep_alive = False  # the end of the connection delimits it
        self._conn.write(bytes(wire.head(status, out, keep_alive)))

    def on_body(self, data: bytes) -> None:
        if self._buffered:
            self._parts.append(data)
        else:
            self._conn.write(wire.chunk(data) if self._chunked_out else data)

    def on_complete(self) -> None:
        conn, request = self._conn, self._request
        if self._buffered:
            conn.answer(request, self._head + b"".join(self._parts) if self._parts else self._head)
            return
        if self._chunked_out:
            conn.write(wire.LAST_CHUNK)
        conn.finish(request)

    def on_failure(self, kind: str, error: BaseException | None) -> None:
        if self._buffered:
            self.failed_before(kind, error)
            return
        # The answer has begun: the only honest report left is an aborted connection.
        logger.warning("%s broke off its answer: %r", self.describe(), error)
        self._conn.abort()

    def on_upstream_writable(self, writable: bool) -> None:
        self._conn.set_reading(writable)

    def _caller_writable(self, writable: bool) -> None:
        if self._upstream is not None:
            self._upstream.set_reading(writable)

    def _caller_gone(self) -> None:
        upstream, self._upstream = self._upstream, None
        if upstream is not None and upstream.sink is self:
            upstream.abandon()
