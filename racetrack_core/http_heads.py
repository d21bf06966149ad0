"""Limits on HTTP request heads, for every server Racetrack runs on uvicorn (Lifecycle, the
Dashboard, Pub's ASGI app) and for Pub's own front server.

uvicorn sets no limit on the size of a request line and headers, and its keep-alive timeout
stops at a request's first byte, so a head of any size, or one trickled in a header at a
time, holds a connection for as long as the client likes. :class:`HeadLimitedProtocol` is
uvicorn's httptools protocol with both limits: 431 over ``MAX_REQUEST_HEAD`` bytes, 408 when
a head takes longer than ``head_timeout`` seconds from its first byte; either answer closes
the connection. Pass ``head_timeout`` with functools.partial.
"""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: A request line and headers longer than this get 431.
MAX_REQUEST_HEAD = 65_536
#: How long a request line and headers may take from their first byte, by default (seconds).
HEAD_TIMEOUT = 15.0


def head_too_long(limit: int) -> str:
    return f"Request line and headers exceed {limit} bytes"


def head_too_slow(limit: float) -> str:
    return f"Request line and headers not received within {limit:.1f} s"


def refusal(status: int, message: str) -> bytes:
    """A whole answer ``{"error": message}`` that closes the connection."""
    body = json.dumps({"error": message}, separators=(",", ":")).encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class _HeadTooLong(Exception):
    """Raised in the parser's callbacks to stop parsing a head over the limit."""


class HeadLimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with limits on request heads (see the module)."""

    def __init__(self, *args: Any, head_timeout: float = HEAD_TIMEOUT, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timeout = head_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        self._awaiting_head = True
        self._head_bytes = self._head_raw = 0
        self._refused = False

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._awaiting_head:
            self._head_raw += len(data)
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(self._head_timeout, self._head_expired)
        super().data_received(data)
        if self._awaiting_head and self._head_raw > MAX_REQUEST_HEAD and not self._refused:
            self._refuse(431, head_too_long(MAX_REQUEST_HEAD))  # still incomplete

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        self._head_bytes = self._head_raw = 0
        self._stop_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._awaiting_head = True
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        if self._head_bytes > MAX_REQUEST_HEAD:
            self._refuse(431, head_too_long(MAX_REQUEST_HEAD))
        elif not self._refused:
            super().send_400_response(msg)

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_REQUEST_HEAD:
            raise _HeadTooLong

    def _head_expired(self) -> None:
        self._head_timer = None
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # A head pipelined behind an answer under way waits for that answer.
            self._head_timer = self.loop.call_later(self._head_timeout, self._head_expired)
        elif self._awaiting_head and not self._refused:
            self._refuse(408, head_too_slow(self._head_timeout))

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _refuse(self, status: int, message: str) -> None:
        self._refused = True
        self._stop_head_timer()
        if not self.transport.is_closing():
            self.transport.write(refusal(status, message))
            self.transport.close()
