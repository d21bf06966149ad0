"""Keep-alive connections to jobs, and the pool that holds them.

A :class:`JobConnection` sends one request at a time and hands the answer, parsed by
``httptools``, to the :class:`AnswerSink` that sent it, as it arrives: head, body pieces, end,
or a failure. There is no timer per call: :meth:`JobPool.sweep`, called about once a second,
fails an exchange whose job stayed silent for ``read_timeout`` and closes connections idle for
``idle_timeout`` (below the jobs' own keep-alive timeout, so that Pub never sends on a
connection the job is closing).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Protocol, cast

import httptools

Key = tuple[str, int, bool]  # host, port, TLS


class ConnectTimeout(Exception):
    """The job did not accept the connection within ``connect_timeout``."""


class AnswerSink(Protocol):
    """Who receives a job's answer (the call that sent the request)."""

    def on_head(
        self, status: int, headers: list[tuple[bytes, bytes]], length: int | None, chunked: bool
    ) -> None: ...
    def on_body(self, data: bytes) -> None: ...
    def on_complete(self) -> None: ...
    def on_failure(self, kind: str, error: BaseException | None) -> None:
        """``kind`` is ``connection_broken`` or ``timeout``."""

    def on_upstream_writable(self, writable: bool) -> None: ...


class JobConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection to a job."""

    def __init__(self, pool: JobPool, key: Key) -> None:
        self.key = key
        self.sink: AnswerSink | None = None
        self.transport: asyncio.Transport | None = None
        self.closed = False
        #: False while a request body is still being streamed to the job.
        self.request_sent = True
        #: A HEAD request's answer has no body; the parser cannot be told so, hence no reuse.
        self.head_only = False
        self.last_active = 0.0
        self.reading_paused = False
        self._pool = pool
        self._loop = pool.loop
        self._parser = httptools.HttpResponseParser(self)
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._length: int | None = None
        self._chunked = False
        self._head_done = False

    # --- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.last_active = self._loop.time()
        if self.sink is None:
            self.close()  # nobody asked: a job talking out of turn is not reused
            return
        try:
            self._parser.feed_data(data)
        except Exception as error:  # a malformed answer, or a failure relaying it
            self._fail("connection_broken", error)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._pool.forget(self)
        sink, self.sink = self.sink, None
        if sink is None:
            return
        if self._head_done and self._length is None and not self._chunked:
            sink.on_complete()  # an answer delimited by the end of the connection
        else:
            sink.on_failure("connection_broken", exc or ConnectionResetError("closed by the job"))

    def pause_writing(self) -> None:
        if self.sink is not None:
            self.sink.on_upstream_writable(False)

    def resume_writing(self) -> None:
        if self.sink is not None:
            self.sink.on_upstream_writable(True)

    # --- httptools callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._headers = []
        self._length = None
        self._chunked = False
        self._head_done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"content-length":
            self._length = int(value)
        elif lowered == b"transfer-encoding":
            self._chunked = b"chunked" in value.lower()
        self._headers.append((lowered, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            return  # 1xx: an interim answer; the real one follows
        self._status = status
        self._head_done = True
        sink = self.sink
        if sink is not None:
            sink.on_head(status, self._headers, self._length, self._chunked)
        if self.head_only:
            self._finish(reuse=False)

    def on_body(self, body: bytes) -> None:
        if self.sink is not None:
            self.sink.on_body(body)

    def on_message_complete(self) -> None:
        if self._head_done and self.sink is not None:
            self._finish(reuse=True)

    # --- used by the call ----------------------------------------------------------------

    def send(self, sink: AnswerSink, data: bytes, head_only: bool, request_sent: bool) -> None:
        """Send a request (its head, and its body when whole) and await its answer in ``sink``."""
        assert self.transport is not None
        self.sink = sink
        self.head_only = head_only
        self.request_sent = request_sent
        self.last_active = self._loop.time()
        self.transport.write(data)

    def write(self, data: bytes) -> None:
        """Send more of the request body."""
        if self.transport is not None and not self.closed:
            self.last_active = self._loop.time()
            self.transport.write(data)

    def set_reading(self, reading: bool) -> None:
        """Pause or resume reading the answer (the caller reads more slowly than the job writes)."""
        if self.transport is None or self.closed or reading != self.reading_paused:
            return
        self.reading_paused = not reading
        if reading:
            self.last_active = self._loop.time()  # the silence was the caller's, not the job's
            self.transport.resume_reading()
        else:
            self.transport.pause_reading()

    def abandon(self) -> None:
        """The call no longer wants the answer: the connection cannot be reused."""
        self.sink = None
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._pool.forget(self)
            if self.transport is not None:
                self.transport.close()

    def _finish(self, reuse: bool) -> None:
        sink, self.sink = self.sink, None
        keep = reuse and self.request_sent and self._parser.should_keep_alive()
        self._pool.release(self, keep)
        if sink is not None:
            sink.on_complete()

    def _fail(self, kind: str, error: BaseException | None) -> None:
        sink, self.sink = self.sink, None
        self.close()
        if sink is not None:
            sink.on_failure(kind, error)

    def timed_out(self) -> None:
        self._fail("timeout", TimeoutError("the job stayed silent"))


class JobPool:
    """Idle keep-alive connections per job address, at most ``max_connections`` open."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        connect_timeout: float,
        read_timeout: float,
        idle_timeout: float,
        max_connections: int,
    ) -> None:
        self.loop = loop
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._idle_timeout = idle_timeout
        self._max = max_connections
        self._idle: dict[Key, list[tuple[float, JobConnection]]] = {}
        self._open: set[JobConnection] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._tls_context: ssl.SSLContext | None = None

    async def acquire(self, host: str, port: int, tls: bool = False) -> JobConnection:
        """An idle connection to ``host:port`` (over TLS if ``tls``), or a new one.

        Raises :class:`ConnectTimeout`, or the ``OSError`` of a refused connection.
        """
        key = (host, port, tls)
        while True:
            idle = self._idle.get(key)
            now = self.loop.time()
            while idle:
                since, connection = idle.pop()
                if connection.closed:
                    continue
                if now - since > self._idle_timeout:
                    connection.close()  # the sweeper has not come by yet; the job may close it
                    continue
                return connection
            if not self._max or len(self._open) < self._max or self._close_one_idle():
                break
            waiter = self.loop.create_future()
            self._waiters.append(waiter)
            await waiter
        try:
            _, protocol = await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: JobConnection(self, key), host, port, ssl=self._tls() if tls else None
                ),
                self._connect_timeout,
            )
        except TimeoutError:
            raise ConnectTimeout(f"no connection to {host}:{port}") from None
        connection = protocol
        self._open.add(connection)
        return connection

    def _tls(self) -> ssl.SSLContext:
        if self._tls_context is None:
            self._tls_context = ssl.create_default_context()
        return self._tls_context

    def release(self, connection: JobConnection, keep: bool) -> None:
        """Take a connection back after an answer; ``keep`` it for reuse, or close it."""
        if keep and not connection.closed:
            self._idle.setdefault(connection.key, []).append((self.loop.time(), connection))
            self._wake()
        else:
            connection.close()

    def forget(self, connection: JobConnection) -> None:
        """A connection closed (its idle entry, if any, goes at the next acquire or sweep)."""
        if connection in self._open:
            self._open.discard(connection)
            self._wake()

    def sweep(self) -> None:
        """Fail silent exchanges with a timeout and close connections idle too long."""
        now = self.loop.time()
        for connection in list(self._open):
            if (
                connection.sink is not None
                and not connection.reading_paused
                and now - connection.last_active > self._read_timeout
            ):
                connection.timed_out()
        for key, idle in list(self._idle.items()):
            kept = []
            for since, connection in idle:
                if connection.closed:
                    continue
                if now - since > self._idle_timeout:
                    connection.close()
                else:
                    kept.append((since, connection))
            if kept:
                self._idle[key] = kept
            else:
                del self._idle[key]

    def close(self) -> None:
        """Close every connection."""
        for connection in list(self._open):
            connection.close()
        self._idle.clear()

    def _close_one_idle(self) -> bool:
        for idle in self._idle.values():
            while idle:
                _, connection = idle.pop(0)
                if not connection.closed:
                    connection.close()
                    return True
        return False

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
