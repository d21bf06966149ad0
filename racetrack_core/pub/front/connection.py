"""The caller's side: an HTTP/1.1 server connection parsed by ``httptools``.

One per accepted socket. Requests are parsed as bytes arrive (pipelined ones too) and answered
in order: the next starts when the previous answer is complete; reading pauses while one waits.
A body is held until the call attaches a :class:`BodySink` (the job's connection), then
streamed to it; an answer given before the body was read discards the rest (and closes the
connection if the caller waits for ``100 Continue``). After a WebSocket handshake, every later
byte is that request's "body", for the tunnel to the ASGI app.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Protocol, cast

import httptools

from racetrack_core.pub.front import wire
from racetrack_core.pub.front.request import MAX_HEAD, BodySink, Request

logger = logging.getLogger("racetrack.pub")


class HeadTooLong(Exception):
    """Raised in the parser's callbacks to stop parsing a head over ``MAX_HEAD`` bytes."""


#: Pipelined requests answered one within the other before the rest wait for the loop.
_MAX_DEPTH = 32


class ConnectionGateway(Protocol):
    """What a caller's connection needs from the server that accepted it (a FastPub, which
    imports this module): its loop and limits, its set of open connections, and a request
    to dispatch."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    @property
    def max_body_size(self) -> int: ...

    @property
    def connections(self) -> set[CallerConnection]: ...

    @property
    def draining(self) -> bool: ...

    def dispatch(self, conn: CallerConnection, request: Request) -> None: ...


class CallerConnection(asyncio.Protocol):
    """An accepted connection; the gateway answers its requests."""

    def __init__(self, gateway: ConnectionGateway) -> None:
        self._gateway = gateway
        self._loop = gateway.loop
        self._max_body = gateway.max_body_size
        self._parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] | None = None
        self.closed = False
        #: When the last request's answer ended or its body was last read (for the idle timeout).
        self.last_active = 0.0
        #: When the first byte of a request head not yet complete arrived (None between heads).
        self.head_since: float | None = None
        self.active: Request | None = None
        self._parsing: Request | None = None
        self._url = b""
        self._queue: deque[Request] = deque()
        self._paused: set[str] = set()
        self._eof = self._must_close = False
        self._depth = 0
        #: The head under way: its parsed size, and the bytes read while it was incomplete.
        self._head_bytes = self._head_raw = 0
        self._head_too_long = False
        #: The WebSocket handshake after which the caller's bytes are no longer HTTP.
        self.upgraded: Request | None = None

    # --- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1]) if isinstance(peer, tuple) else None
        self.last_active = self._loop.time()
        self._gateway.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self.upgraded is not None:
            self.last_active = self._loop.time()
            if self.upgraded.take(data):
                self._pause("body")
            return
        parsing = self._parsing
        if parsing is None or not parsing.head_done:
            self._head_raw += len(data)
            # Bytes between requests (blank lines too) start the deadline of a request head.
            if self.head_since is None:
                self.head_since = self._loop.time()
        else:
            self.last_active = self._loop.time()
        try:
            self._parser.feed_data(data)
            if self._head_raw > MAX_HEAD and self._in_head():
                self._malformed(None)  # a head still incomplete (the callbacks count whole ones)
        except httptools.HttpParserUpgrade as upgrade:
            self._upgrade(data[upgrade.args[0] :])
        except httptools.HttpParserError as error:
            self._malformed(None if self._head_too_long else error)
        except Exception as error:
            logger.exception("Pub failed on a request from %s", self.peer)
            self._malformed(error)

    def eof_received(self) -> bool:
        self._eof = True
        # Half-closed after a whole request: answer it, then close; otherwise (a tunnel too) now.
        return self.upgraded is None and self._parsing is None and self.active is not None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._gateway.connections.discard(self)
        self._queue.clear()
        active, self.active = self.active, None
        if active is not None and not active.finished:
            active.finished = True
            if active.on_gone is not None:
                active.on_gone()

    def pause_writing(self) -> None:
        active = self.active
        if active is not None and active.on_writable is not None:
            active.on_writable(False)

    def resume_writing(self) -> None:
        active = self.active
        if active is not None and active.on_writable is not None:
            active.on_writable(True)

    # --- httptools callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._parsing, self._url = Request(), b""
        if self.head_since is None:
            self.head_since = self._loop.time()

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        cast(Request, self._parsing).add_header(name, value)

    def on_headers_complete(self) -> None:
        request = self._parsing
        assert request is not None
        self._head_bytes = self._head_raw = 0
        self.head_since = None
        request.head_done = True
        parser = self._parser
        request.method = parser.get_method().decode("latin-1")
        request.http11 = parser.get_http_version() == "1.1"
        # HTTP/1.0 callers get one answer per connection (no keep-alive negotiation).
        request.keep_alive = request.http11 and parser.should_keep_alive()
        request.set_target(self._url)
        if request.content_length is not None and request.content_length > self._max_body:
            request.discard = True
        if self.active is None:
            self._start(request)
        else:
            self._queue.append(request)
            self._pause("pipeline")

    def on_body(self, data: bytes) -> None:
        request = self._parsing
        assert request is not None
        request.received += len(data)
        if request.received > self._max_body and not request.discard:
            self._too_large(request)
        elif request.take(data):
            self._pause("body")  # held until the call attaches where the body goes

    def on_message_complete(self) -> None:
        request = self._parsing
        assert request is not None
        self._parsing = None
        request.complete = True
        if request.sink is not None:
            request.sink.end()
        elif request.finished and self.active is None and not self.closed:
            self._next()  # its answer went out before its body was read

    # --- used by the gateway and the calls -----------------------------------------------

    def answer(self, request: Request, data: bytes) -> None:
        """Send ``request``'s whole answer in one write, and go on to the next request."""
        if request.finished or self.transport is None or self.closed:
            return
        request.started = True
        self.transport.write(data)
        self.finish(request)

    def write(self, data: bytes) -> None:
        """Send part of the active request's answer."""
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def attach(self, request: Request, sink: BodySink) -> None:
        """Stream the rest of ``request``'s body to ``sink`` (what arrived so far goes first)."""
        if request.expects_continue and not request.complete and self.transport is not None:
            self.transport.write(wire.CONTINUE)
        buffered, request.body, request.buffered = request.body, [], 0
        for data in buffered:
            sink.body(data)
        request.sink = sink
        if request.complete:
            sink.end()
        self._resume("body")

    def set_reading(self, reading: bool, reason: str = "upstream") -> None:
        """Pause or resume reading the caller (its body arrives faster than the job takes it)."""
        (self._resume if reading else self._pause)(reason)

    def finish(self, request: Request) -> None:
        """``request``'s answer is complete: close, or go on to the next request."""
        if request is not self.active or self.transport is None:
            return
        request.finished = True
        request.on_gone = request.on_writable = None
        self.active = None
        self.last_active = self._loop.time()
        if not request.complete:
            request.discard = True
            request.sink = None
            request.body = []
            if request.expects_continue or self._eof:
                self._must_close = True  # the body will not come; the parser cannot skip it
        self._resume("body")
        self._resume("upstream")  # a job that answered before taking the whole body
        if not request.keep_alive or self._must_close or self._gateway.draining:
            self.close()
        elif request.complete:
            self._next()

    def abort(self) -> None:
        """Drop the connection (an answer broke off: the caller must see it truncated)."""
        if self.transport is not None and not self.closed:
            self.transport.abort()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()

    def idle_for(self, now: float) -> float:
        """Seconds since the last answer ended or body bytes came, while nothing is under way:
        no answer and no request head (which :meth:`head_overdue` bounds)."""
        if self.active is not None or self.head_since is not None:
            return 0.0
        return now - self.last_active

    def head_overdue(self, now: float, limit: float) -> bool:
        """A request head has taken more than ``limit`` seconds to arrive, and nothing else is
        under way (a head pipelined behind an answer waits for it)."""
        since = self.head_since
        return since is not None and now - since > limit and self.active is None

    def time_out_head(self, limit: float) -> None:
        """Answer 408 for a request head that did not arrive in time, and close."""
        if self.transport is not None and not self.closed:
            self._queue.clear()
            self.transport.write(wire.head_timeout(limit))
            self.close()

    # --- internals -----------------------------------------------------------------------

    def _start(self, request: Request) -> None:
        self.active = request
        if request.discard:  # its declared length is over the limit
            self._reject_too_large(request)
            return
        self._gateway.dispatch(self, request)

    def _next(self) -> None:
        if self._queue:
            request = self._queue.popleft()
            if not self._queue:
                self._resume("pipeline")
            if self._depth > _MAX_DEPTH:
                # Many pipelined requests answered at once: unwind the stack first.
                self._loop.call_soon(self._start_later, request)
                return
            self._depth += 1
            try:
                self._start(request)
            finally:
                self._depth -= 1
        else:
            self._resume("pipeline")
            if self._eof:
                self.close()

    def _start_later(self, request: Request) -> None:
        if not self.closed:
            self._start(request)

    def _too_large(self, request: Request) -> None:
        request.discard = True
        if request is self.active and not request.started:
            self._reject_too_large(request)
        elif request is self.active or request in self._queue:
            self.abort()

    def _reject_too_large(self, request: Request) -> None:
        self._must_close = True
        self.answer(request, wire.too_large(self._max_body))

    def _upgrade(self, rest: bytes) -> None:
        # The parser stopped after an upgrade request: what follows it is not HTTP.
        self._must_close = True
        request = self._queue[-1] if self._queue else self.active
        if request is not None and request.websocket:
            self.upgraded = request  # later bytes are its "body", for the tunnel to the app
            request.complete = False
            request.take(rest)  # at most one read: the next one pauses if too much is held
        elif self.active is None:
            self.close()  # answered already; nothing more to read

    def _in_head(self) -> bool:
        return self._parsing is not None and not self._parsing.head_done

    def _count_head(self, size: int) -> None:
        # llhttp sets no limit of its own: bound what a request line and headers cost.
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD:
            self._head_too_long = True
            raise HeadTooLong

    def _malformed(self, error: Exception | None) -> None:
        """Answer 400 (or 431 for an overlong head) once nothing else is under way, and close.

        When the malformed part is the body of the request under way, its call is given up at
        once (the job would wait for the rest, which never comes): the caller gets the 400
        unless the job's answer has begun, and then its connection is aborted.
        """
        self._queue.clear()
        self._must_close = True
        active = self.active
        if active is not None and active is self._parsing and not active.finished:
            sink, active.sink = active.sink, None
            if sink is None or sink.abandon():
                active.started = False
                self.answer(active, wire.malformed(error, MAX_HEAD))
            else:
                self.abort()
        elif active is None and self.transport is not None:
            self.transport.write(wire.malformed(error, MAX_HEAD))
            self.close()
        self._pause("malformed")

    def _pause(self, reason: str) -> None:
        if not self._paused and self.transport is not None and not self.closed:
            self.transport.pause_reading()
        self._paused.add(reason)

    def _resume(self, reason: str) -> None:
        if reason in self._paused:
            self._paused.discard(reason)
            if not self._paused and self.transport is not None and not self.closed:
                self.transport.resume_reading()
