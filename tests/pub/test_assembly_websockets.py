"""WebSocket calls through Pub as ``racetrack up`` runs it: the front server, the app behind it.

Every behavioural test of ``test_websockets`` runs again here, against a :class:`PubServer`
(``start_pub`` is replaced by ``test_assembly``'s, and ``job`` is the WebSocket echo
job): the front server hands each handshake to the ASGI app and relays the bytes. The test of a
server without ASGI's ``websocket.http.response`` extension is not repeated: it is about the
server that runs the app, not about the front server. The tests below use raw sockets.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from tests.pub import test_websockets
from tests.pub.servers import ADMIN_TOKEN, LifecycleStandIn
from tests.pub.test_assembly import start_pub
from tests.pub.test_websockets import job

pytest.importorskip("websockets", reason="uvicorn serves WebSockets with it")

pytestmark = pytest.mark.slow

__all__ = ["job", "start_pub"]

_NOT_REPEATED = {"test_without_http_denials_a_refusal_closes_with_1008_and_the_reason"}
for _name, _test in vars(test_websockets).items():
    if _name.startswith("test_") and callable(_test) and _name not in _NOT_REPEATED:
        globals()[_name] = _test


def exchange(pub: str, data: bytes) -> bytes:
    """Send ``data`` on one connection to ``pub`` and read until Pub closes it."""
    host, port = pub.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_a_request_pipelined_after_a_refused_upgrade_is_not_read_as_http(
    start_pub: Callable[..., str], lifecycle: LifecycleStandIn
) -> None:
    pub = start_pub()
    handshake = (
        b"GET /pub/job/adder/latest/echo HTTP/1.1\r\nHost: pub\r\nConnection: Upgrade\r\n"
        b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        b"X-Racetrack-Auth: " + ADMIN_TOKEN.encode() + b"\r\n\r\n"
    )
    pipelined = b"GET /pub/nothing/here HTTP/1.1\r\nHost: pub\r\n\r\n"

    received = exchange(pub, handshake + pipelined)

    # Without Sec-WebSocket-Key the app's server refuses the handshake; that one answer comes
    # back, then the connection closes: the pipelined request reached nobody as HTTP.
    assert received.startswith(b"HTTP/1.1 400 ")
    assert received.count(b"HTTP/1.1 ") == 1
    assert b"connection: close" in received.lower()
    assert b"Pub has no route" not in received
    assert lifecycle.calls == 0


def test_a_call_before_a_handshake_on_one_connection_is_answered_first(
    start_pub: Callable[..., str],
) -> None:
    pub = start_pub()
    live = b"GET /pub/live HTTP/1.1\r\nHost: pub\r\n\r\n"
    handshake = (
        b"GET /pub/job/adder/latest/echo HTTP/1.1\r\nHost: pub\r\nConnection: Upgrade\r\n"
        b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"X-Racetrack-Auth: " + ADMIN_TOKEN.encode() + b"\r\n\r\n"
    )
    host, port = pub.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(live + handshake)
        received = b""
        while b"Switching Protocols" not in received or received.count(b"\r\n\r\n") < 2:
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk

    first, _, rest = received.partition(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert first.startswith(b"HTTP/1.1 200 ")
    assert b'"live":true' in first
    assert b"s3pplmbitxaq9kygzzhzrbk+xoo=" in rest.lower()  # RFC 6455's sample accept key
