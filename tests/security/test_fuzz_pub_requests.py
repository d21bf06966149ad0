"""Fuzzing Pub's front server with raw bytes on a socket (issue 15, D10).

Whatever arrives (random bytes, or valid requests mutated: bad chunk sizes, huge headers, odd
line endings, several pipelined) is answered with well-formed HTTP responses and a close, in
bounded time, never with a 5xx; a request malformed from its first body byte never reaches the
job.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import currently_in_test_context, event, example, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from racetrack_core.pub import PubConfig
from tests.pub.servers import ADMIN_TOKEN, LifecycleStandIn, Server
from tests.pub.test_front import FrontServer

pytestmark = pytest.mark.slow

#: Longest a whole exchange may take: Pub's head deadline (1 s here) and a margin.
EXCHANGE_LIMIT = 6.0
CALL = (
    f"POST /pub/job/adder/1.0.0/echo HTTP/1.1\r\nhost: pub\r\nx-racetrack-auth: {ADMIN_TOKEN}\r\n"
)
VALID = [
    f"GET /pub/job/adder/1.0.0/x HTTP/1.1\r\nhost: pub\r\nx-racetrack-auth: {ADMIN_TOKEN}\r\n\r\n",
    CALL + "content-length: 5\r\n\r\nhello",
    CALL + "transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    "GET /pub/live HTTP/1.1\r\nhost: pub\r\n\r\n",
    "GET /pub/job/adder/latest/x?q=1 HTTP/1.0\r\n\r\n",
]
BAD_CHUNK_SIZES = ["zz", "-1", "g", "ffffffffffffffffffffffff", "", "5 5", "+5", "0x5", "\x00"]


@dataclass
class Stack:
    pub: FrontServer
    job_calls: list[str]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    calls: list[str] = []

    async def answer(request: Request) -> PlainTextResponse:
        calls.append(request.url.path)
        return PlainTextResponse(str(len(await request.body())))

    job = Server(Starlette(routes=[Route("/{path:path}", answer, methods=["GET", "POST"])]))
    lifecycle = LifecycleStandIn(jobs={"adder": {"1.0.0": job.url}})
    lifecycle.server = Server(lifecycle.app())
    config = PubConfig(lifecycle_url=lifecycle.server.url, request_head_timeout=1.0)
    pub = FrontServer(config, max_body_size=1_000_000)
    yield Stack(pub, calls)
    pub.stop()
    lifecycle.server.stop()
    job.stop()


def exchange(port: int, data: bytes) -> tuple[bytes, float]:
    """Send ``data`` in one piece, close our side, read until Pub closes: (answer, seconds)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=EXCHANGE_LIMIT) as connection:
        received = b""
        try:
            connection.sendall(data)
            connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # Pub closed before taking it all (an overlong head): read what it said
        try:
            while piece := connection.recv(65536):
                received += piece
        except ConnectionResetError:
            pass  # closed on us after (or instead of) an answer
        except TimeoutError:
            pytest.fail(f"no close within {EXCHANGE_LIMIT} s; received {received[:200]!r}")
    return received, time.monotonic() - started


STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3}) [^\r\n]*")


def answers(stream: bytes) -> list[int]:
    """The statuses of the responses in ``stream``; fails unless each one is well-formed."""
    statuses = []
    while stream:
        head, sep, stream = stream.partition(b"\r\n\r\n")
        assert sep, f"an answer's head never ends: {head[:200]!r}"
        lines = head.split(b"\r\n")
        match = STATUS_LINE.fullmatch(lines[0])
        assert match, f"not a status line: {lines[0][:200]!r}"
        headers = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            assert colon, f"not a header line: {line[:200]!r}"
            assert re.fullmatch(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name), name
            headers[name.lower()] = value.strip()
        status = int(match[1])
        statuses.append(status)
        if status == 100:
            continue
        assert b"content-length" in headers, f"an answer without content-length: {head!r}"
        length = int(headers[b"content-length"])
        assert len(stream) >= length, "an answer's body broke off"
        stream = stream[length:]
    return statuses


def check_answered(stack: Stack, data: bytes) -> list[int]:
    received, seconds = exchange(stack.pub.port, data)
    assert seconds < EXCHANGE_LIMIT
    statuses = answers(received)
    final = [status for status in statuses if status != 100]
    if currently_in_test_context():
        event(f"answers {sorted(set(final))}")
    allowed_5xx = {501} if b"upgrade" in data.lower() else set()  # no WebSocket on the front alone
    assert all(status < 500 or status in allowed_5xx for status in final), (statuses, data[:300])
    return final


@settings(deadline=None)
@given(st.binary(max_size=3000))
@example(b"\r\n" * 50)
@example(b"GET / HTTP/1.1\r\n" + b"x: y\r\n" * 10)
def test_any_bytes_get_well_formed_answers_and_reach_no_job(stack: Stack, data: bytes) -> None:
    before = len(stack.job_calls)
    check_answered(stack, data)
    assert len(stack.job_calls) == before


@settings(deadline=None)
@given(
    st.sampled_from(BAD_CHUNK_SIZES),
    st.sampled_from(["hello", "", "hello world, longer than five"]),
)
def test_a_bad_chunk_gets_400_and_never_reaches_the_job(stack: Stack, size: str, data: str) -> None:
    before = len(stack.job_calls)
    body = f"{size}\r\n{data}\r\n0\r\n\r\n"
    statuses = check_answered(stack, (CALL + "transfer-encoding: chunked\r\n\r\n" + body).encode())

    assert statuses == [400]
    assert stack.job_calls[before:] == []


@settings(deadline=None)
@given(st.sampled_from(VALID), st.integers(65_600, 300_000), st.sampled_from(["x-big", "host"]))
def test_a_huge_header_gets_431_and_never_reaches_the_job(
    stack: Stack, request: str, size: int, name: str
) -> None:
    before = len(stack.job_calls)
    head, _, rest = request.partition("\r\n")
    data = f"{head}\r\n{name}: {'a' * size}\r\n{rest}".encode()

    assert check_answered(stack, data) == [431]
    assert stack.job_calls[before:] == []


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """Valid requests, pipelined, then mutated: line endings swapped, bytes flipped or cut."""
    requests = draw(st.lists(st.sampled_from(VALID), min_size=1, max_size=4))
    data = bytearray("".join(requests).encode())
    for _ in range(draw(st.integers(0, 4))):
        if not data:
            break
        kind = draw(st.sampled_from(["ending", "flip", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, len(data) - 1))
        if kind == "ending":
            ending = draw(st.sampled_from([b"\n", b"\r", b"\r\r\n", b"\n\r", b""]))
            data = bytearray(bytes(data).replace(b"\r\n", ending, draw(st.integers(1, 3))))
        elif kind == "flip":
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        else:
            del data[at:]
    return bytes(data)


@settings(deadline=None)
@given(mutated())
def test_mutated_and_pipelined_requests_get_well_formed_answers(stack: Stack, data: bytes) -> None:
    check_answered(stack, data)


def test_valid_pipelined_requests_are_all_answered(stack: Stack) -> None:
    """The checker itself: valid requests reach the job and come back 200."""
    before = len(stack.job_calls)
    statuses = check_answered(stack, "".join(VALID[:3]).encode())
    assert statuses == [200, 200, 200]
    assert stack.job_calls[before:] == [
        "/pub/job/adder/1.0.0/x",
        "/pub/job/adder/1.0.0/echo",
        "/pub/job/adder/1.0.0/echo",
    ]
