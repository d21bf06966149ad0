"""Pub's protocol: a header block and the body behind it leave in one write."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from racetrack_core.pub.asgi.serving import CoalescingTransport

HEADERS = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class RecordingTransport:
    """Stands in for a socket transport and records each write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1234) if name == "peername" else default


def coalescing() -> tuple[CoalescingTransport, RecordingTransport]:
    inner = RecordingTransport()
    return CoalescingTransport(inner, asyncio.get_running_loop()), inner  # type: ignore[arg-type]


def test_a_header_block_and_its_body_leave_in_one_write() -> None:
    asyncio.run(_test_a_header_block_and_its_body_leave_in_one_write())


async def _test_a_header_block_and_its_body_leave_in_one_write() -> None:
    transport, inner = coalescing()

    transport.write(HEADERS)
    assert inner.writes == []
    assert transport.get_write_buffer_size() == len(HEADERS)
    transport.write(b"{}")
    await asyncio.sleep(0)

    assert inner.writes == [HEADERS + b"{}"]


def test_a_header_block_alone_leaves_in_the_same_loop_iteration() -> None:
    asyncio.run(_test_a_header_block_alone_leaves_in_the_same_loop_iteration())


async def _test_a_header_block_alone_leaves_in_the_same_loop_iteration() -> None:
    transport, inner = coalescing()

    transport.write(HEADERS)
    await asyncio.sleep(0)

    assert inner.writes == [HEADERS]


def test_bodies_and_large_header_blocks_are_written_at_once() -> None:
    asyncio.run(_test_bodies_and_large_header_blocks_are_written_at_once())


async def _test_bodies_and_large_header_blocks_are_written_at_once() -> None:
    transport, inner = coalescing()
    large = b"HTTP/1.1 200 OK\r\nx: " + b"a" * 20_000 + b"\r\n\r\n"

    transport.write(b"HTTP/1.1 is a body too, without a blank line")
    transport.write(large)

    assert inner.writes == [b"HTTP/1.1 is a body too, without a blank line", large]


def test_close_sends_what_is_held_and_abort_drops_it() -> None:
    asyncio.run(_test_close_sends_what_is_held_and_abort_drops_it())


async def _test_close_sends_what_is_held_and_abort_drops_it() -> None:
    closed, closed_inner = coalescing()
    aborted, aborted_inner = coalescing()

    closed.write(HEADERS)
    closed.close()
    aborted.write(HEADERS)
    aborted.abort()
    await asyncio.sleep(0)

    assert closed_inner.writes == [HEADERS]
    assert closed_inner.closed
    assert aborted_inner.writes == []
    assert aborted_inner.aborted
    assert closed.get_extra_info("peername") == ("127.0.0.1", 1234)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_python_m_racetrack_core_pub_asgi_serves_pub(workers: int) -> None:
    port = free_port()
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PUB_LIFECYCLE_URL": "http://127.0.0.1:9", "PYTHONPATH": str(root)}
    command = [sys.executable, "-m", "racetrack_core.pub.asgi", "--port", str(port)]
    process = subprocess.Popen([*command, "--workers", str(workers)], env=env)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/pub/ready", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, "Pub exited"
                assert time.monotonic() < deadline, "Pub did not answer within 20 s"
                time.sleep(0.1)
        refused = httpx.get(f"http://127.0.0.1:{port}/pub/job/adder/latest/x", timeout=5)
    finally:
        process.terminate()
        process.wait(timeout=15)

    assert response.json() == {"service": "pub", "ready": True}
    assert refused.status_code == 503  # nothing answers as Lifecycle at port 9
    assert refused.json()["error"].startswith("Pub cannot check permissions: Lifecycle")
