"""Bytes on the wire: status lines, Pub's JSON answers, chunk framing and the Date header."""

from __future__ import annotations

import time
from collections.abc import Iterable
from email.utils import formatdate
from http import HTTPStatus

from racetrack_core.http_heads import head_too_long, head_too_slow
from racetrack_core.pub import failures
from racetrack_core.pub.failures import JSON_TYPE, json_body

RawHeaders = list[tuple[bytes, bytes]]

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"

_STATUS_LINES: dict[int, bytes] = {}
_date_second = 0
_date_header = b""


def status_line(status: int) -> bytes:
    """``HTTP/1.1 <status> <reason>\\r\\n``, cached per status."""
    line = _STATUS_LINES.get(status)
    if line is None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        line = _STATUS_LINES[status] = f"HTTP/1.1 {status} {reason}\r\n".encode("latin-1")
    return line


def date_header() -> bytes:
    """``date: <IMF-fixdate>\\r\\n``, formatted once per second."""
    global _date_second, _date_header
    now = int(time.time())
    if now != _date_second:
        _date_second = now
        _date_header = b"date: " + formatdate(now, usegmt=True).encode("latin-1") + b"\r\n"
    return _date_header


def head(status: int, headers: Iterable[tuple[bytes, bytes]], keep_alive: bool) -> bytearray:
    """A response's status line and header block (with Date, and ``connection: close``)."""
    block = bytearray(status_line(status))
    for name, value in headers:
        block += name
        block += b": "
        block += value
        block += b"\r\n"
    block += date_header()
    if not keep_alive:
        block += b"connection: close\r\n"
    block += b"\r\n"
    return block


def whole_answer(
    status: int,
    body: bytes,
    content_type: bytes,
    headers: Iterable[tuple[bytes, bytes]],
    keep_alive: bool,
    send_body: bool = True,
) -> bytes:
    """A complete answer with a length, ready for one write (``send_body`` false for HEAD)."""
    raw: RawHeaders = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    raw.extend(headers)
    block = head(status, raw, keep_alive)
    if send_body:
        block += body
    return bytes(block)


def json_answer(
    status: int,
    payload: object,
    headers: Iterable[tuple[bytes, bytes]],
    keep_alive: bool,
    send_body: bool = True,
) -> bytes:
    """Pub's JSON answer, byte for byte the body that the ASGI app's ``send_json`` sends."""
    return whole_answer(status, json_body(payload), JSON_TYPE, headers, keep_alive, send_body)


def chunk(data: bytes) -> bytes:
    """``data`` framed as one chunk of a chunked body."""
    return b"%x\r\n%b\r\n" % (len(data), data)


def too_large(limit: int) -> bytes:
    """413 for a request body over ``limit`` bytes; the connection closes after it."""
    message = f"Request body is larger than {limit} bytes"
    return json_answer(413, failures.error(message), (), keep_alive=False)


def malformed(error: Exception | None, head_limit: int) -> bytes:
    """400 for malformed HTTP, or 431 (``error`` None) for a head over ``head_limit`` bytes."""
    if error is None:
        status, message = 431, head_too_long(head_limit)
    else:
        status, message = 400, f"Bad request: malformed HTTP ({type(error).__name__})"
    return json_answer(status, failures.error(message), (), keep_alive=False)


def head_timeout(limit: float) -> bytes:
    """408 for a request line and headers that did not all arrive within ``limit`` seconds."""
    return json_answer(408, failures.error(head_too_slow(limit)), (), keep_alive=False)
