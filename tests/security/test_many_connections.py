"""500 connections opened at once to Pub's port of a real ``racetrack up`` (all open before
any request is sent), each sending a call to a deployed job or asking Pub's own ``/pub/live``:
every one is answered within the time limit (200, or a refusal with a clear status and error:
never a hang or a reset), the job performs exactly the calls answered 200, each once, and Pub
serves normally afterwards."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.security.recording_job import NAME, VERSION, Recorder, recording_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CONNECTIONS = 500
#: Every answer must have come by then (the whole test stays well under 30 s).
DEADLINE = 25.0
#: What Pub may answer when it sheds load: a status that says so, with a JSON error.
REFUSALS = {429, 503}


@pytest.fixture(scope="module")
def recorder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorder]:
    with recording_server(tmp_path_factory.mktemp("connections") / "home") as running:
        yield running


async def one_call(
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes
) -> tuple[int, bytes]:
    """Send ``request`` on an open connection and read the whole answer."""
    reader, writer = connection
    try:
        writer.write(request)
        await writer.drain()
        answer = await reader.read(-1)  # the request says connection: close
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0
    return status, body


async def all_at_once(port: int, requests: list[bytes]) -> list[tuple[int, bytes] | str]:
    """Open one connection per request, all of them before any request is sent; then send
    them all and collect each answer (or why there was none)."""
    connections = await asyncio.gather(
        *(asyncio.open_connection("127.0.0.1", port) for _ in requests)
    )
    tasks = [
        asyncio.create_task(one_call(connection, request))
        for connection, request in zip(connections, requests, strict=True)
    ]
    _, pending = await asyncio.wait(tasks, timeout=DEADLINE)
    for task in pending:
        task.cancel()
    results: list[tuple[int, bytes] | str] = []
    for task in tasks:
        error = None if task in pending else task.exception()
        if task in pending:
            results.append("no answer within the deadline")
        elif error is not None:
            results.append(f"{type(error).__name__}: {error}")
        else:
            results.append(task.result())
    return results


def check(results: list[tuple[int, bytes] | str]) -> Counter[int]:
    failures = [result for result in results if isinstance(result, str)]
    assert failures == [], f"{len(failures)} connections failed, e.g. {failures[:3]}"
    answered = [result for result in results if not isinstance(result, str)]
    statuses = Counter(status for status, _ in answered)
    assert set(statuses) <= {200} | REFUSALS, statuses
    for status, body in answered:
        if status in REFUSALS:
            assert json.loads(body)["error"], body
    return statuses


def test_500_calls_at_once_to_a_job_are_all_answered_and_each_performed_once(
    recorder: Recorder,
) -> None:
    requests = []
    for number in range(CONNECTIONS):
        body = json.dumps({"mark": f"call-{number}"}).encode()
        requests.append(recorder.head(f"content-length: {len(body)}", "connection: close") + body)
    before = len(recorder.performed())
    started = time.monotonic()

    results = asyncio.run(all_at_once(recorder.pub_port, requests))
    elapsed = time.monotonic() - started

    statuses = check(results)
    answered_200 = {
        json.loads(body)
        for result in results
        if not isinstance(result, str) and result[0] == 200
        for body in [result[1]]
    }
    performed = recorder.performed()[before:]
    assert elapsed < DEADLINE + 2
    assert statuses[200] >= CONNECTIONS * 0.9, statuses  # refusals stay a bounded few
    assert len(performed) == len(set(performed))  # no call performed twice
    assert set(performed) == answered_200  # performed: exactly the calls answered 200
    assert recorder.server.call(NAME, VERSION, {"mark": "after"}).json() == "after"


def test_500_connections_at_once_to_pub_live_are_all_answered(recorder: Recorder) -> None:
    request = b"GET /pub/live HTTP/1.1\r\nhost: pub\r\nconnection: close\r\n\r\n"

    results = asyncio.run(all_at_once(recorder.pub_port, [request] * CONNECTIONS))

    assert check(results)[200] == CONNECTIONS
    assert recorder.server.call(NAME, VERSION, {"mark": "after-live"}).json() == "after-live"


def test_a_call_is_served_while_500_idle_connections_are_held_open(recorder: Recorder) -> None:
    async def hold_and_call() -> tuple[int, bytes]:
        idle = await asyncio.gather(
            *(asyncio.open_connection("127.0.0.1", recorder.pub_port) for _ in range(CONNECTIONS))
        )
        try:
            await asyncio.sleep(0.2)
            body = b'{"mark":"beside-idle"}'
            request = recorder.head(f"content-length: {len(body)}", "connection: close") + body
            connection = await asyncio.open_connection("127.0.0.1", recorder.pub_port)
            return await asyncio.wait_for(one_call(connection, request), timeout=10)
        finally:
            for _, writer in idle:
                writer.close()

    status, body = asyncio.run(hold_and_call())

    assert status == 200, body
    assert json.loads(body) == "beside-idle"
    assert recorder.performed()[-1] == "beside-idle"
