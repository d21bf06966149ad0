"""A keep-alive connection to a job (or to any upstream HTTP/1.1 server).

A :class:`JobConnection` sends one request at a time and hands the answer, parsed by
``httptools``, to the :class:`AnswerSink` that sent it, as it arrives: head, body pieces, end,
or a failure. It sets no timer: its :class:`~racetrack_core.pub.front.pool.JobPool`
times out silent exchanges.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, cast

import httptools

Key = tuple[str, int, bool]  # host, port, TLS


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


class ConnectionOwner(Protocol):
    """What a connection needs from the pool that opened it (a JobPool), which imports this
    module: its loop, and to be told when the connection is free again or gone."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    def release(self, connection: JobConnection, keep: bool) -> None: ...

    def forget(self, connection: JobConnection) -> None: ...


class JobConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection to a job."""

    def __init__(self, pool: ConnectionOwner, key: Key) -> None:
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
