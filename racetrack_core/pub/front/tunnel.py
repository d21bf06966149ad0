"""A WebSocket handshake handed to the ASGI app, and the caller joined to it after ``101``.

The front server does not speak WebSocket; Pub's ASGI app does
(:mod:`racetrack_core.pub.asgi.websockets`). A request with ``Upgrade: websocket``, on any path,
goes to the app as it came (with the caller's address in the front header) on a connection of
its own, never taken from or given back to the pool. If the app answers ``101 Switching
Protocols``, that answer goes to the caller byte for byte, and from then on bytes are relayed
both ways, untouched, until either side closes; each side stops being read while the other's
write buffer is full. Any other answer (a refused or malformed handshake) goes to the caller as
an ordinary answer, and the caller's connection closes after it: what the caller sent after its
handshake was meant for a WebSocket and is dropped, never read as HTTP.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Protocol, cast

import httptools

from racetrack_core.pub import failures
from racetrack_core.pub.config import PubConfig
from racetrack_core.pub.front import wire
from racetrack_core.pub.front.backend import HANDSHAKE_NOT_FORWARDED, Backend, request_head
from racetrack_core.pub.front.connection import CallerConnection
from racetrack_core.pub.front.pool import JobPool
from racetrack_core.pub.front.request import MAX_HEAD, Request
from racetrack_core.pub.headers import HOP_BY_HOP

logger = logging.getLogger("racetrack.pub")

_NO_APP = (
    "WebSocket calls go through Pub's ASGI app, and this front server has none behind it; "
    "serve Pub with 'racetrack serve pub'"
)
#: Headers of a refused handshake's answer that the front server sets itself.
_ANSWER_DROPPED = HOP_BY_HOP | {b"date", b"server"}


class TunnelGateway(Protocol):
    """What a WebSocket tunnel needs from the server (a FastPub, which imports this module):
    its loop and configuration, the ASGI app behind it and the pool of connections to that
    app, and a way to answer with Pub's own JSON."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    @property
    def config(self) -> PubConfig: ...

    @property
    def backend(self) -> Backend | None: ...

    @property
    def backend_pool(self) -> JobPool: ...

    def answer_json(
        self,
        conn: CallerConnection,
        request: Request,
        status: int,
        payload: object,
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None: ...


async def open_tunnel(gateway: TunnelGateway, conn: CallerConnection, request: Request) -> None:
    """Hand ``request``, a WebSocket handshake, to the ASGI app and relay what follows."""
    backend = gateway.backend
    if backend is None:
        request.keep_alive = False  # what follows a handshake is not HTTP
        gateway.answer_json(conn, request, 501, failures.error(_NO_APP))
        return
    tunnel = Tunnel(gateway, conn, request)
    try:
        await asyncio.wait_for(
            gateway.loop.create_connection(lambda: tunnel, backend.host, backend.port),
            gateway.config.connect_timeout,
        )
    except (TimeoutError, OSError) as error:
        tunnel.fail(503, failures.APP_UNREACHABLE, error)
        return
    if conn.closed or request.finished:
        tunnel.close()
        return
    lines = request_head(request, conn, backend, HANDSHAKE_NOT_FORWARDED)
    tunnel.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


class Tunnel(asyncio.Protocol):
    """The app's side: its answer to the handshake, then the raw bytes to and from the caller."""

    def __init__(self, gateway: TunnelGateway, conn: CallerConnection, request: Request) -> None:
        self._gateway = gateway
        self._conn = conn
        self._request = request
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._received = bytearray()  # the answer's bytes, until its head has gone on
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._chunked = False
        self._answered = False  # the head of the app's answer went to the caller
        self._switched = False  # after 101: raw bytes both ways
        self._done = False
        request.on_gone = self.close
        request.on_writable = self._caller_writable

    # --- towards the app -------------------------------------------------------------------

    def send(self, head: bytes) -> None:
        """Send the handshake; the app has ``backend_pool.read_timeout`` to answer it."""
        assert self._transport is not None
        pool = self._gateway.backend_pool
        self._timer = pool.loop.call_later(pool.read_timeout, self._timed_out)
        self._transport.write(head)

    # --- BodySink: the caller's bytes after the switch ---------------------------------------

    def body(self, data: bytes) -> None:
        if self._transport is not None and not self._done:
            self._transport.write(data)

    def end(self) -> None:
        self.close()

    def abandon(self) -> bool:
        self.close()  # never called: after the switch the caller's bytes are not parsed
        return not (self._answered or self._switched)

    # --- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        if self._done:  # the caller left while the connection was being made
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        if self._switched:
            self._conn.write(data)
            return
        if not self._answered:
            self._received += data
        try:
            self._parser.feed_data(data)
            if len(self._received) > MAX_HEAD and not self._answered:
                raise ValueError(f"an answer's head over {MAX_HEAD} bytes")
        except httptools.HttpParserUpgrade:
            self._switch()  # what followed the 101 head (the app's first frames) goes with it
        except Exception as error:  # a malformed answer
            self._broken(error)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._switched or self._answered:
            self._finish()  # the WebSocket ended, or an answer delimited by the close
        elif not self._done:
            self._broken(exc or ConnectionResetError("closed by Pub's ASGI app"))

    def pause_writing(self) -> None:
        self._conn.set_reading(False, "tunnel")

    def resume_writing(self) -> None:
        self._conn.set_reading(True, "tunnel")

    # --- httptools callbacks: the app's answer to the handshake ------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        self._headers.append((lowered, value))
        if lowered == b"transfer-encoding":
            self._chunked = b"chunked" in value.lower()

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        self._cancel_timer()
        if self._status == 101:
            return  # the parser stops at the switch: see data_received
        headers = [(name, value) for name, value in self._headers if name not in _ANSWER_DROPPED]
        if self._chunked:
            headers.append((b"transfer-encoding", b"chunked"))
        self._answered = self._request.started = True
        self._received = bytearray()
        self._conn.write(bytes(wire.head(self._status, headers, keep_alive=False)))

    def on_body(self, body: bytes) -> None:
        if self._answered:
            self._conn.write(wire.chunk(body) if self._chunked else body)

    def on_message_complete(self) -> None:
        if self._answered:
            if self._chunked:
                self._conn.write(wire.LAST_CHUNK)
            self._finish()

    # --- the end ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the app's side (the caller's side is gone, or done)."""
        self._done = True
        self._cancel_timer()
        if self._transport is not None:
            self._transport.close()

    def fail(self, status: int, what: str, error: BaseException | None) -> None:
        """Nothing of an answer went to the caller: give it Pub's error, and close."""
        logger.warning("Pub's ASGI app %s for a WebSocket handshake: %r", what, error)
        self.close()
        payload = failures.app_error(self._request.path, what)
        self._gateway.answer_json(self._conn, self._request, status, payload)

    def _switch(self) -> None:
        conn, request = self._conn, self._request
        if self._status != 101 or conn.upgraded is not request:
            # The caller's request was no handshake to llhttp (no "Connection: Upgrade").
            self._broken(ValueError("switched protocols on a request that was no upgrade"))
            return
        self._switched = request.started = True
        received, self._received = self._received, bytearray()
        conn.write(bytes(received))  # the 101 head, and what the app sent after it
        conn.attach(request, self)  # what the caller sent after its handshake goes first

    def _caller_writable(self, writable: bool) -> None:
        transport = self._transport
        if transport is not None and not self._done:
            (transport.resume_reading if writable else transport.pause_reading)()

    def _timed_out(self) -> None:
        self._timer = None
        timeout = self._gateway.backend_pool.read_timeout
        self.fail(504, failures.no_answer(timeout), TimeoutError())

    def _broken(self, error: BaseException) -> None:
        if self._answered or self._switched:
            logger.warning("Pub's ASGI app broke off a WebSocket tunnel: %r", error)
            self.close()
            self._conn.abort()
        elif not self._done:
            self.fail(502, failures.BROKEN, error)

    def _finish(self) -> None:
        self.close()
        self._conn.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
