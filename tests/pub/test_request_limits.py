"""Hostile request heads, on raw sockets: Pub's front server and its ASGI app alike (issue 15).

An overlong head gets 431, a head that takes too long to arrive gets 408, and a job path with a
dot segment (in any encoding) gets 400 before Lifecycle is asked anything, so that a grant on a
prefix can never be stretched to a path outside it.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from racetrack_core.pub import PubConfig, create_app
from racetrack_core.pub.asgi.serving import PubHttpProtocol
from tests.pub.servers import ADMIN_TOKEN, LifecycleStandIn, Server
from tests.pub.test_front import FrontServer

pytestmark = pytest.mark.slow

AUTH = f"x-racetrack-auth: {ADMIN_TOKEN}\r\n"


@pytest.fixture(params=["front", "asgi"])
def pub_port(
    request: pytest.FixtureRequest, lifecycle: LifecycleStandIn
) -> Iterator[Callable[..., int]]:
    """``start(**config) -> port`` of the front server, or of the ASGI app on uvicorn."""
    stops: list[Callable[[], None]] = []

    def start(**overrides: Any) -> int:
        assert lifecycle.server is not None
        config = PubConfig(lifecycle_url=lifecycle.server.url, **overrides)
        if request.param == "front":
            front = FrontServer(config)
            stops.append(front.stop)
            return front.port
        protocol = functools.partial(PubHttpProtocol, pub_config=config)
        server = Server(create_app(config), lifespan="on", proxy_headers=False, http=protocol)
        stops.append(server.stop)
        return server.port

    yield start
    for stop in stops:
        stop()


def exchange(port: int, data: bytes, pause: float = 0.0, pieces: int = 1) -> bytes:
    """Send ``data`` (in ``pieces``, ``pause`` seconds apart), then read until the close."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as connection:
        size = -(-len(data) // pieces)
        try:
            for start in range(0, len(data), size):
                connection.sendall(data[start : start + size])
                time.sleep(pause)
        except OSError:
            pass  # closed on us: read what it said
        received = b""
        try:
            while piece := connection.recv(65536):
                received += piece
        except ConnectionResetError:
            pass
        return received


def status_and_error(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)["error"]


def test_a_whole_head_over_64_kib_gets_431(pub_port: Callable[..., int]) -> None:
    port = pub_port()
    headers = b"".join(b"x-filler-%d: %b\r\n" % (n, b"a" * 4000) for n in range(33))  # 131 kB
    answer = exchange(port, b"GET /pub/live HTTP/1.1\r\nhost: pub\r\n" + headers + b"\r\n")

    status, error = status_and_error(answer)
    assert status == 431
    assert error == "Request line and headers exceed 65536 bytes"
    assert b"connection: close" in answer.lower()


def test_a_head_a_little_over_the_limit_in_one_piece_gets_431(pub_port: Callable[..., int]) -> None:
    port = pub_port()
    request = b"GET /pub/live HTTP/1.1\r\nhost: pub\r\nx-filler: " + b"a" * 65_600 + b"\r\n\r\n"

    assert status_and_error(exchange(port, request))[0] == 431


def test_a_head_just_under_the_limit_is_served(pub_port: Callable[..., int]) -> None:
    port = pub_port()
    headers = b"".join(b"x-filler-%d: %b\r\n" % (n, b"a" * 4000) for n in range(15))  # 60 kB
    request = b"GET /pub/live HTTP/1.1\r\nhost: pub\r\nconnection: close\r\n" + headers + b"\r\n"

    assert exchange(port, request).startswith(b"HTTP/1.1 200 ")


def test_a_head_sent_slowly_gets_408_at_the_deadline(pub_port: Callable[..., int]) -> None:
    port = pub_port(request_head_timeout=1.0)
    request = b"GET /pub/live HTTP/1.1\r\n" + b"".join(b"x-%d: 1\r\n" % n for n in range(20))
    started = time.monotonic()
    answer = exchange(port, request, pause=0.3, pieces=20)  # 6 s if never cut off

    status, error = status_and_error(answer)
    assert status == 408
    assert "1.0 s" in error
    assert time.monotonic() - started < 4


def test_blank_lines_trickled_in_do_not_keep_a_connection_open(
    pub_port: Callable[..., int],
) -> None:
    port = pub_port(request_head_timeout=1.0)
    started = time.monotonic()
    answer = exchange(port, b"\r\n" * 20, pause=0.3, pieces=20)

    assert answer == b"" or answer.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < 4


@pytest.mark.parametrize(
    "tail",
    [
        "/api/v1/../../openapi.json",
        "/api/v1/perform/../../docs",
        "/api/v1/%2e%2e/%2E%2E/openapi.json",
        "/api/v1/perform/.%2e/..%2F..%2Fdocs",
        "/api/v1/./perform",
        "/api/v1/perform/..",
    ],
)
def test_a_job_path_with_a_dot_segment_gets_400_before_any_grant_is_asked(
    pub_port: Callable[..., int], lifecycle: LifecycleStandIn, tail: str
) -> None:
    port = pub_port()
    request = f"GET /pub/job/adder/1.0.0{tail} HTTP/1.1\r\nhost: pub\r\n{AUTH}"
    answer = exchange(port, (request + "connection: close\r\n\r\n").encode())

    status, error = status_and_error(answer)
    assert status == 400
    assert "dot segment" in error
    assert lifecycle.calls == 0


def test_double_slashes_and_dots_inside_names_still_reach_the_job(
    pub_port: Callable[..., int],
) -> None:
    port = pub_port()
    for tail in ("/api/v1//perform", "/files/report..txt", "/.well-known/x"):
        request = f"GET /pub/job/adder/1.0.0{tail} HTTP/1.1\r\nhost: pub\r\n{AUTH}"
        answer = exchange(port, (request + "connection: close\r\n\r\n").encode())
        assert answer.startswith(b"HTTP/1.1 200 "), (tail, answer[:300])


def test_python_m_racetrack_core_pub_enforces_both_limits(lifecycle: LifecycleStandIn) -> None:
    """The process that ``racetrack up`` runs: Pub's port, settings from PUB_* variables."""
    assert lifecycle.server is not None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PUB_LIFECYCLE_URL": lifecycle.server.url,
        "PUB_REQUEST_HEAD_TIMEOUT": "1",
        "PYTHONPATH": str(root),
    }
    command = [sys.executable, "-m", "racetrack_core.pub", "--port", str(port)]
    process = subprocess.Popen(command, env=env)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, "Pub exited"
                assert time.monotonic() < deadline, "Pub did not listen within 20 s"
                time.sleep(0.1)
        headers = b"".join(b"x-filler-%d: %b\r\n" % (n, b"a" * 4000) for n in range(33))
        too_long = exchange(port, b"GET /pub/live HTTP/1.1\r\n" + headers + b"\r\n")
        slow = exchange(port, b"GET /pub/live HTTP/1.1\r\nx-a: 1\r\nx-b: 2\r\n", 0.6, 4)
        dotted = f"GET /pub/job/adder/1.0.0/a/../../b HTTP/1.1\r\n{AUTH}connection: close\r\n\r\n"
        dots = exchange(port, dotted.encode())
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert status_and_error(too_long)[0] == 431
    assert status_and_error(slow)[0] == 408
    assert status_and_error(dots)[0] == 400
