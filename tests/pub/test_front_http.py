"""The front server's HTTP/1.1 mechanics, on raw sockets: what ``test_proxy`` cannot see."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from racetrack_core.pub import PubConfig
from tests.pub.servers import ADMIN_TOKEN, LARGE_CHUNK, LARGE_CHUNKS, LifecycleStandIn
from tests.pub.test_front import FrontServer

pytestmark = pytest.mark.slow

AUTH = f"x-racetrack-auth: {ADMIN_TOKEN}\r\n"


class RawJob:
    """A job on a bare socket that answers each connection with ``behave(connection)``."""

    def __init__(self, behave: Callable[[socket.socket], None]) -> None:
        self.accepted = 0
        self._behave = behave
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection, contextlib.suppress(OSError):
            self._behave(connection)

    def close(self) -> None:
        self._socket.close()


def read_head(connection: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = connection.recv(65536)
        if not piece:
            return data
        data += piece
    return data


def keep_alive_answers(connection: socket.socket) -> None:
    while read_head(connection):
        connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")


def breaks_before_answering(connection: socket.socket) -> None:
    read_head(connection)


def breaks_mid_answer(connection: socket.socket) -> None:
    read_head(connection)
    connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 200000\r\n\r\n" + b"x" * 1000)
    time.sleep(0.2)


@pytest.fixture
def front(lifecycle: LifecycleStandIn) -> Iterator[Callable[..., FrontServer]]:
    servers: list[FrontServer] = []

    def start(**overrides: Any) -> FrontServer:
        assert lifecycle.server is not None
        options = {k: overrides.pop(k) for k in ("max_body_size",) if k in overrides}
        config = PubConfig(lifecycle_url=lifecycle.server.url, **overrides)
        server = FrontServer(config, **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def raw_jobs() -> Iterator[Callable[[Callable[[socket.socket], None]], RawJob]]:
    jobs: list[RawJob] = []

    def start(behave: Callable[[socket.socket], None]) -> RawJob:
        jobs.append(RawJob(behave))
        return jobs[-1]

    yield start
    for job in jobs:
        job.close()


def connect(server: FrontServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


class Answers:
    """Reads answers with a content-length off one connection, in order."""

    def __init__(self, connection: socket.socket) -> None:
        self._connection = connection
        self._buffer = b""

    def _fill(self) -> None:
        piece = self._connection.recv(65536)
        assert piece, "the connection closed mid-answer"
        self._buffer += piece

    def head(self) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self._buffer:
            self._fill()
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        pairs = (line.partition(":") for line in lines[1:])
        return int(lines[0].split()[1]), {k.lower(): v.strip() for k, _, v in pairs}

    def next(self) -> tuple[int, dict[str, str], bytes]:
        status, headers = self.head()
        length = int(headers.get("content-length", "0"))
        while len(self._buffer) < length:
            self._fill()
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return status, headers, body


def read_answer(connection: socket.socket) -> tuple[int, dict[str, str], bytes]:
    return Answers(connection).next()


def read_to_end(connection: socket.socket) -> bytes:
    data = b""
    while piece := connection.recv(65536):
        data += piece
    return data


def test_pipelined_requests_are_answered_in_order(front: Callable[..., FrontServer]) -> None:
    server = front()
    request = "GET /pub/job/adder/1.0.0/{} HTTP/1.1\r\nhost: pub\r\n" + AUTH + "\r\n"
    with connect(server) as connection:
        connection.sendall((request.format("first") + request.format("second")).encode())
        answers = Answers(connection)
        first, second = answers.next(), answers.next()

    assert (first[0], second[0]) == (200, 200)
    assert json.loads(first[2])["path"] == "/pub/job/adder/1.0.0/first"
    assert json.loads(second[2])["path"] == "/pub/job/adder/1.0.0/second"


def test_a_chunked_request_body_is_forwarded_and_the_connection_kept(
    front: Callable[..., FrontServer],
) -> None:
    server = front()
    head = "POST /pub/job/adder/1.0.0/echo HTTP/1.1\r\nhost: pub\r\n" + AUTH
    head += "transfer-encoding: chunked\r\n\r\n"
    with connect(server) as connection:
        connection.sendall(head.encode() + b"5\r\nhello\r\n")
        time.sleep(0.1)
        connection.sendall(b"6\r\n world\r\n0\r\n\r\n")
        answers = Answers(connection)
        status, _, body = answers.next()
        connection.sendall(b"GET /pub/live HTTP/1.1\r\nhost: pub\r\n\r\n")
        live = answers.next()

    assert status == 200
    assert json.loads(body)["body"] == "hello world"
    assert json.loads(live[2]) == {"service": "pub", "live": True}


def test_expect_100_continue_is_answered_before_the_body(front: Callable[..., FrontServer]) -> None:
    server = front()
    head = "POST /pub/job/adder/1.0.0/echo HTTP/1.1\r\nhost: pub\r\n" + AUTH
    head += "content-length: 5\r\nexpect: 100-continue\r\n\r\n"
    with connect(server) as connection:
        connection.sendall(head.encode())
        answers = Answers(connection)
        interim, _ = answers.head()
        connection.sendall(b"hello")
        status, _, body = answers.next()

    assert interim == 100
    assert status == 200
    assert json.loads(body)["body"] == "hello"
    assert "expect" not in dict(json.loads(body)["headers"])


def test_expect_100_continue_refused_closes_the_connection(
    front: Callable[..., FrontServer],
) -> None:
    server = front()
    head = "POST /pub/job/adder/1.0.0/echo HTTP/1.1\r\nhost: pub\r\n"
    head += "content-length: 5\r\nexpect: 100-continue\r\n\r\n"
    with connect(server) as connection:
        connection.sendall(head.encode())
        status, headers, body = read_answer(connection)
        rest = read_to_end(connection)

    assert status == 401
    assert headers["connection"] == "close"
    assert body == b'{"error":"Unauthenticated: no header X-Racetrack-Auth: not logged in"}'
    assert rest == b""


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_the_limit_gets_413(front: Callable[..., FrontServer], chunked: bool) -> None:
    server = front(max_body_size=10)
    head = "POST /pub/job/adder/1.0.0/echo HTTP/1.1\r\nhost: pub\r\n" + AUTH
    if chunked:
        data = head.encode() + b"transfer-encoding: chunked\r\n\r\n" + b"b\r\n" + b"x" * 11
    else:
        data = head.encode() + b"content-length: 11\r\n\r\n" + b"x" * 11
    with connect(server) as connection:
        connection.sendall(data)
        status, headers, body = read_answer(connection)

    assert status == 413
    assert headers["content-type"] == "application/json"
    assert "larger than 10 bytes" in json.loads(body)["error"]


def test_a_half_closed_caller_still_gets_its_answer(front: Callable[..., FrontServer]) -> None:
    server = front()
    with connect(server) as connection:
        request = "GET /pub/job/adder/1.0.0/echo HTTP/1.1\r\nhost: pub\r\n" + AUTH + "\r\n"
        connection.sendall(request.encode())
        connection.shutdown(socket.SHUT_WR)
        data = read_to_end(connection)

    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.endswith(b"}")


def test_an_http_1_0_caller_gets_a_streamed_answer_delimited_by_close(
    front: Callable[..., FrontServer],
) -> None:
    server = front()
    with connect(server) as connection:
        request = "GET /pub/job/adder/1.0.0/large HTTP/1.0\r\n" + AUTH + "\r\n"
        connection.sendall(request.encode())
        data = read_to_end(connection)

    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"transfer-encoding" not in head.lower()
    assert body == LARGE_CHUNK * LARGE_CHUNKS


def test_head_is_forwarded_and_the_connection_stays_usable(
    front: Callable[..., FrontServer],
) -> None:
    server = front()
    with connect(server) as connection:
        head = "HEAD /pub/job/adder/1.0.0/echo HTTP/1.1\r\nhost: pub\r\n" + AUTH + "\r\n"
        connection.sendall(head.encode())
        answers = Answers(connection)
        status, headers = answers.head()
        connection.sendall(b"GET /pub/live HTTP/1.1\r\nhost: pub\r\n\r\n")
        live = answers.next()

    assert status == 200
    assert int(headers["content-length"]) > 0
    assert live[0] == 200


def test_a_malformed_request_gets_400_and_a_close(front: Callable[..., FrontServer]) -> None:
    server = front()
    with connect(server) as connection:
        connection.sendall(b"GET /pub/live HTTP/1.1\r\nbad header line\r\n\r\n")
        status, headers, body = read_answer(connection)

    assert status == 400
    assert headers["connection"] == "close"
    assert json.loads(body)["error"].startswith("Bad request")


@pytest.mark.parametrize("streaming", [False, True])
def test_a_malformed_chunk_in_a_calls_body_gets_400_at_once_not_counted_against_the_job(
    front: Callable[..., FrontServer], streaming: bool
) -> None:
    """Issue 15's D10: the job waited for the rest of the body, and the caller got a 504 after
    ``upstream_timeout``, counted as the job's error. ``streaming``: the call already went
    on to the job with the start of its body; otherwise the bad chunk comes with the head."""
    server = front(upstream_timeout=30.0)
    head = "POST /pub/job/adder/1.0.0/echo HTTP/1.1\r\nhost: pub\r\n" + AUTH
    head += "transfer-encoding: chunked\r\n\r\n"
    bad_chunk = b"zz\r\nnot a chunk size\r\n"
    started = time.monotonic()
    with connect(server) as connection:
        connection.settimeout(5)
        if streaming:
            connection.sendall(head.encode() + b"5\r\nhello\r\n")
            time.sleep(0.3)
            connection.sendall(bad_chunk)
        else:
            connection.sendall(head.encode() + b"5\r\nhello\r\n" + bad_chunk)
        status, headers, body = read_answer(connection)
        rest = read_to_end(connection)
    elapsed = time.monotonic() - started
    with connect(server) as connection:
        # The same call, well framed, still works (and waits for the permission check that the
        # broken call may have left under way, so that the server stops with nothing pending).
        connection.sendall(head.encode() + b"5\r\nhello\r\n0\r\n\r\n")
        again = read_answer(connection)
    metrics = server.pub.metrics.render().decode()

    assert elapsed < 5
    assert status == 400
    assert headers["connection"] == "close"
    assert json.loads(body)["error"].startswith("Bad request: malformed HTTP")
    assert rest == b""
    assert "pub_job_proxy_errors_total{" not in metrics
    assert again[0] == 200
    assert json.loads(again[2])["body"] == "hello"


def test_job_connections_are_reused_then_closed_when_idle(
    front: Callable[..., FrontServer],
    raw_jobs: Callable[[Callable[[socket.socket], None]], RawJob],
    lifecycle: LifecycleStandIn,
) -> None:
    job = raw_jobs(keep_alive_answers)
    lifecycle.jobs["raw"] = {"1.0.0": job.url}
    server = front(upstream_keepalive_timeout=0.3)
    request = "GET /pub/job/raw/1.0.0/x HTTP/1.1\r\nhost: pub\r\n" + AUTH + "\r\n"
    with connect(server) as connection:
        answers = Answers(connection)
        for _ in range(3):
            connection.sendall(request.encode())
            assert answers.next()[2] == b"ok"
        reused = job.accepted
        time.sleep(1.0)
        connection.sendall(request.encode())
        assert answers.next()[2] == b"ok"

    assert reused == 1
    assert job.accepted == 2


def test_a_job_breaking_the_connection_before_answering_gives_502(
    front: Callable[..., FrontServer],
    raw_jobs: Callable[[Callable[[socket.socket], None]], RawJob],
    lifecycle: LifecycleStandIn,
) -> None:
    lifecycle.jobs["raw"] = {"1.0.0": raw_jobs(breaks_before_answering).url}
    server = front()
    with connect(server) as connection:
        connection.sendall(f"GET /pub/job/raw/1.0.0/x HTTP/1.1\r\nhost: p\r\n{AUTH}\r\n".encode())
        status, _, body = read_answer(connection)

    assert status == 502
    assert json.loads(body) == {
        "error": "Reverse proxy error: job raw 1.0.0 broke the connection before answering; "
        "it may have died",
        "job_name": "raw",
        "job_version": "1.0.0",
    }


def test_a_job_breaking_off_its_answer_aborts_the_callers_connection(
    front: Callable[..., FrontServer],
    raw_jobs: Callable[[Callable[[socket.socket], None]], RawJob],
    lifecycle: LifecycleStandIn,
) -> None:
    lifecycle.jobs["raw"] = {"1.0.0": raw_jobs(breaks_mid_answer).url}
    server = front()
    with connect(server) as connection:
        connection.sendall(f"GET /pub/job/raw/1.0.0/x HTTP/1.1\r\nhost: p\r\n{AUTH}\r\n".encode())
        received = b""
        try:
            while piece := connection.recv(65536):
                received += piece
        except ConnectionResetError:
            pass

    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"content-length: 200000" in head
    assert len(body) < 200000


def test_an_idle_caller_connection_is_closed(front: Callable[..., FrontServer]) -> None:
    server = front()
    server.pub.keep_alive_timeout = 0.2
    with connect(server) as connection:
        connection.sendall(b"GET /pub/live HTTP/1.1\r\nhost: pub\r\n\r\n")
        assert read_answer(connection)[0] == 200
        started = time.monotonic()
        rest = read_to_end(connection)

    assert rest == b""
    assert time.monotonic() - started < 3


def test_an_http_1_0_caller_gets_one_answer_then_a_close(front: Callable[..., FrontServer]) -> None:
    server = front()
    with connect(server) as connection:
        connection.sendall(b"GET /pub/live HTTP/1.0\r\nconnection: keep-alive\r\n\r\n")
        status, headers, _ = read_answer(connection)
        rest = read_to_end(connection)

    assert status == 200
    assert headers["connection"] == "close"
    assert rest == b""


def test_a_slow_reader_gets_the_whole_answer_and_no_timeout(
    front: Callable[..., FrontServer],
) -> None:
    server = front(upstream_timeout=0.3)
    with connect(server) as connection:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        request = "GET /pub/job/adder/1.0.0/large HTTP/1.1\r\nhost: pub\r\n" + AUTH
        connection.sendall((request + "connection: close\r\n\r\n").encode())
        time.sleep(1.0)  # Pub's buffers fill, and it stops reading the job meanwhile
        data = read_to_end(connection)

    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    pieces, rest = [], body
    while rest:
        size, _, rest = rest.partition(b"\r\n")
        pieces.append(rest[: int(size, 16)])
        rest = rest[int(size, 16) + 2 :]
    assert b"".join(pieces) == LARGE_CHUNK * LARGE_CHUNKS


def test_a_streamed_body_with_100_continue_reaches_the_job(
    front: Callable[..., FrontServer],
) -> None:
    server = front()
    head = "PUT /pub/job/adder/1.0.0/echo HTTP/1.1\r\nhost: pub\r\n" + AUTH
    head += "transfer-encoding: chunked\r\nexpect: 100-continue\r\n\r\n"
    with connect(server) as connection:
        connection.sendall(head.encode())
        answers = Answers(connection)
        interim, _ = answers.head()
        for _ in range(3):
            connection.sendall(b"%x\r\n%b\r\n" % (len(LARGE_CHUNK), LARGE_CHUNK))
        connection.sendall(b"0\r\n\r\n")
        status, _, body = answers.next()

    assert interim == 100
    assert status == 200
    assert json.loads(body)["body"] == (LARGE_CHUNK * 3).decode()


def test_a_caller_aborting_mid_body_leaves_pub_serving(front: Callable[..., FrontServer]) -> None:
    server = front()
    head = "POST /pub/job/adder/1.0.0/echo HTTP/1.1\r\nhost: pub\r\n" + AUTH
    with connect(server) as connection:
        connection.sendall((head + "content-length: 100\r\n\r\n").encode() + b"x" * 10)
        time.sleep(0.2)  # the call has reached the job, which waits for the rest
    with connect(server) as connection:
        connection.sendall(f"GET /pub/job/adder/1.0.0/echo HTTP/1.1\r\n{AUTH}\r\n".encode())
        status, _, _ = read_answer(connection)

    assert status == 200


def test_an_overlong_head_gets_431(front: Callable[..., FrontServer]) -> None:
    server = front()
    with connect(server) as connection:
        connection.sendall(b"GET /pub/live HTTP/1.1\r\nx-big: " + b"a" * 70_000)
        status, headers, body = read_answer(connection)

    assert status == 431
    assert headers["connection"] == "close"
    assert "exceed" in json.loads(body)["error"]


def answers_after_half_a_second(connection: socket.socket) -> None:
    read_head(connection)
    time.sleep(0.5)
    connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nlate")


def test_stopping_lets_a_call_under_way_finish(
    front: Callable[..., FrontServer],
    raw_jobs: Callable[[Callable[[socket.socket], None]], RawJob],
    lifecycle: LifecycleStandIn,
) -> None:
    lifecycle.jobs["raw"] = {"1.0.0": raw_jobs(answers_after_half_a_second).url}
    server = front()
    with connect(server) as connection:
        connection.sendall(f"GET /pub/job/raw/1.0.0/x HTTP/1.1\r\nhost: p\r\n{AUTH}\r\n".encode())
        time.sleep(0.2)
        stopping = threading.Thread(target=server.stop)
        stopping.start()
        status, _, body = read_answer(connection)
        rest = read_to_end(connection)
        stopping.join(timeout=10)

    assert (status, body) == (200, b"late")
    assert rest == b""


def answers_before_reading_the_body(connection: socket.socket) -> None:
    read_head(connection)
    time.sleep(0.3)  # the body backs up meanwhile, and Pub stops reading the caller
    connection.sendall(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 2\r\n\r\nno")


def test_a_job_answering_before_the_body_leaves_the_callers_connection_usable(
    front: Callable[..., FrontServer],
    raw_jobs: Callable[[Callable[[socket.socket], None]], RawJob],
    lifecycle: LifecycleStandIn,
) -> None:
    lifecycle.jobs["raw"] = {"1.0.0": raw_jobs(answers_before_reading_the_body).url}
    server = front()
    size = 16 << 20
    head = f"POST /pub/job/raw/1.0.0/x HTTP/1.1\r\nhost: p\r\n{AUTH}content-length: {size}\r\n\r\n"
    with connect(server) as connection:
        sending = threading.Thread(
            target=connection.sendall, args=(head.encode() + b"x" * size,), daemon=True
        )
        sending.start()
        answers = Answers(connection)
        status, _, body = answers.next()
        sending.join(timeout=20)
        connection.sendall(b"GET /pub/live HTTP/1.1\r\nhost: pub\r\n\r\n")
        live = answers.next()

    assert (status, body) == (413, b"no")
    assert live[0] == 200


@contextlib.contextmanager
def unaccepting_job() -> Iterator[str]:
    """A job address whose listen queue is full: a new connection is never accepted.

    The kernel drops the SYNs of a listening socket whose accept queue is full, so connecting
    hangs (as it does to a host that went away) instead of being refused.
    """
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        fillers = []
        try:
            for _ in range(8):
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(address)
                fillers.append(filler)
            time.sleep(0.1)  # the handshakes that the queue takes complete
            yield f"http://127.0.0.1:{address[1]}"
        finally:
            for filler in fillers:
                filler.close()


def test_a_job_accepting_no_connection_gives_502_after_connect_timeout(
    front: Callable[..., FrontServer], lifecycle: LifecycleStandIn
) -> None:
    with unaccepting_job() as url:
        lifecycle.jobs["stuck"] = {"1.0.0": url}
        server = front(connect_timeout=0.3)
        with connect(server) as connection:
            started = time.monotonic()
            request = f"GET /pub/job/stuck/1.0.0/x HTTP/1.1\r\nhost: p\r\n{AUTH}\r\n"
            connection.sendall(request.encode())
            status, _, body = read_answer(connection)
            waited = time.monotonic() - started

    assert status == 502
    assert json.loads(body) == {
        "error": "Reverse proxy error: job stuck 1.0.0 is not reachable "
        "(no connection within 0.3 s)",
        "job_name": "stuck",
        "job_version": "1.0.0",
    }
    assert 0.25 < waited < 3  # the timeout, not the kernel's SYN retries, ended the wait
