"""The Dashboard's Lifecycle client over real sockets: a kept-alive connection that the server
closes as a request goes out is retried once for a GET, never for anything else."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
from collections.abc import Iterator

import pytest

from racetrack_core.dashboard.api import LifecycleClient, Unreachable

ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4\r\n"
    b"Connection: keep-alive\r\n\r\ntrue"
)


def read_request(connection: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            missing = int(line.split(b":")[1]) - len(body)
            while missing > 0:
                missing -= len(connection.recv(missing))
    return head


@pytest.fixture
def closing_server() -> Iterator[tuple[str, list[bytes]]]:
    """A server that answers the first request of each connection and closes the connection,
    unanswered, when a second request comes on it (as a server whose keep-alive ran out)."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[bytes] = []

    def serve(connection: socket.socket) -> None:
        with connection:
            first = read_request(connection)
            if not first:
                return
            seen.append(first.split(b"\r\n")[0])
            connection.sendall(ANSWER)
            second = read_request(connection)
            if second:
                seen.append(second.split(b"\r\n")[0] + b" (dropped)")

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", seen
    listener.close()


def run(coroutine: object) -> object:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()  # type: ignore[arg-type]


def test_a_get_on_a_dropped_connection_is_asked_again(
    closing_server: tuple[str, list[bytes]],
) -> None:
    url, seen = closing_server

    async def twice() -> list[object]:
        client = LifecycleClient(url)
        try:
            return [await client.call("GET", "/job", "rt_x") for _ in range(2)]
        finally:
            await client.close()

    assert run(twice()) == [True, True]
    assert seen == [
        b"GET /api/v1/job HTTP/1.1",
        b"GET /api/v1/job HTTP/1.1 (dropped)",
        b"GET /api/v1/job HTTP/1.1",
    ]


def test_other_methods_are_not_sent_twice(closing_server: tuple[str, list[bytes]]) -> None:
    url, seen = closing_server

    async def get_then_post() -> object:
        client = LifecycleClient(url)
        try:
            await client.call("GET", "/job", "rt_x")
            return await client.call("POST", "/job/primer/1.0.0/redeploy", "rt_x")
        finally:
            await client.close()

    with pytest.raises(Unreachable):
        run(get_then_post())
    assert seen == [
        b"GET /api/v1/job HTTP/1.1",
        b"POST /api/v1/job/primer/1.0.0/redeploy HTTP/1.1 (dropped)",
    ]
