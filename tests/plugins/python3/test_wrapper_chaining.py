"""``call_job``: the URL, the headers (token, tracing id) and the errors, against a real server.

A stand-in for Pub (the standard library's HTTP server, in a thread, on 127.0.0.1) records
every request it gets and answers what the test tells it to.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import racetrack_plugins.python3.wrapper as wrapper
from racetrack_plugins.python3.wrapper import (
    JobCallError,
    WrapperError,
    call_job,
    call_job_async,
    chaining,
)

TOKEN = "rt_family-token-for-the-test-0123456789"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class PubStandIn:
    """Answers every request with ``status`` and ``body``; keeps what it received."""

    url: str = ""
    status: int = 200
    body: bytes = b"true"
    content_type: str = "application/json"
    delay: float = 0.0
    #: When set, makes the body of each answer from the request.
    respond: Callable[[Recorded], bytes] | None = None
    requests: list[Recorded] = field(default_factory=list)

    @property
    def last(self) -> Recorded:
        return self.requests[-1]


@pytest.fixture
def pub(monkeypatch: pytest.MonkeyPatch) -> Iterator[PubStandIn]:
    stand_in = PubStandIn()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            recorded = Recorded(
                self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
            )
            stand_in.requests.append(recorded)
            if stand_in.delay:
                time.sleep(stand_in.delay)
            answer = stand_in.respond(recorded) if stand_in.respond else stand_in.body
            self.send_response(stand_in.status)
            self.send_header("Content-Type", stand_in.content_type)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    stand_in.url = f"http://127.0.0.1:{server.server_address[1]}/pub"
    monkeypatch.setenv("PUB_URL", stand_in.url)
    monkeypatch.setenv("AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("JOB_NAME", "python-chain")
    monkeypatch.setenv("JOB_VERSION", "0.0.1")
    monkeypatch.delenv("REQUEST_TRACING_HEADER", raising=False)
    try:
        yield stand_in
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_call_job_posts_json_to_pub_with_the_family_token(pub: PubStandIn) -> None:
    pub.body = b'{"prime": true}'
    assert call_job("primer", payload={"number": 7907}) == {"prime": True}
    sent = pub.last
    assert (sent.method, sent.path) == ("POST", "/pub/job/primer/latest/api/v1/perform")
    assert json.loads(sent.body) == {"number": 7907}
    assert sent.headers["x-racetrack-auth"] == TOKEN
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["user-agent"] == "racetrack-job/python-chain (0.0.1)"
    assert "x-request-tracing-id" not in sent.headers  # not serving a call: Pub makes one


def test_version_path_and_method_are_honoured(pub: PubStandIn) -> None:
    pub.body = b'[{"name": "number", "type": "int"}]'
    answer = call_job("primer", "api/v1/parameters", version="1.x", method="get")
    assert answer == [{"name": "number", "type": "int"}]
    assert (pub.last.method, pub.last.path) == ("GET", "/pub/job/primer/1.x/api/v1/parameters")
    assert pub.last.body == b""
    assert "content-type" not in pub.last.headers


def test_an_empty_answer_is_none(pub: PubStandIn) -> None:
    pub.body = b""
    assert call_job("primer", payload={"number": 1}) is None


def test_a_refusal_names_the_job_the_status_and_pubs_message(pub: PubStandIn) -> None:
    pub.status = 403
    pub.body = json.dumps(
        {"error": "Job family python-chain has no permission 'call_job' on job primer"}
    ).encode()
    with pytest.raises(JobCallError) as caught:
        call_job("primer", payload={"number": 7})
    error = caught.value
    assert (error.job_name, error.version, error.path, error.status) == (
        "primer",
        "latest",
        "/api/v1/perform",
        403,
    )
    assert str(error) == (
        "calling job primer latest /api/v1/perform answered 403: "
        "Job family python-chain has no permission 'call_job' on job primer"
    )
    assert TOKEN not in str(error)
    assert isinstance(error, WrapperError)


def test_an_error_that_is_not_json_is_quoted(pub: PubStandIn) -> None:
    pub.status = 502
    pub.content_type = "text/plain"
    pub.body = b"bad gateway " * 100
    with pytest.raises(JobCallError, match=r"answered 502: bad gateway bad gateway") as caught:
        call_job("primer", payload={})
    assert caught.value.error.endswith("...")
    assert len(caught.value.error) < 320


def test_a_success_that_is_not_json_is_an_error(pub: PubStandIn) -> None:
    pub.content_type = "text/html"
    pub.body = b"<html>docs</html>"
    with pytest.raises(JobCallError, match=r"answered 200: the answer is not JSON: <html>"):
        call_job("primer", "/docs", method="GET")


def test_an_unreachable_pub_is_an_error_without_status(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("PUB_URL", f"http://127.0.0.1:{port}/pub")
    with pytest.raises(
        JobCallError, match=r"primer latest /api/v1/perform failed: cannot reach Pub"
    ):
        call_job("primer", payload={})


def test_a_slow_answer_times_out(pub: PubStandIn) -> None:
    pub.delay = 1.0
    with pytest.raises(JobCallError, match="timed out") as caught:
        call_job("primer", payload={}, timeout=0.2)
    assert caught.value.status is None


def test_without_pub_url_the_error_says_where_call_job_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PUB_URL", raising=False)
    with pytest.raises(WrapperError, match="PUB_URL is not set"):
        call_job("primer")


def test_pub_url_must_be_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUB_URL", "file:///etc")
    with pytest.raises(WrapperError, match="must be an http:// or https:// URL"):
        call_job("primer")


def test_a_job_name_with_a_slash_is_refused(pub: PubStandIn) -> None:
    with pytest.raises(WrapperError, match="without '/'"):
        call_job("primer/../admin")
    assert pub.requests == []


def test_call_job_async_sends_the_same_request(pub: PubStandIn) -> None:
    import asyncio

    pub.body = b"false"
    assert asyncio.run(call_job_async("primer", payload={"number": 8}, version="0.0.1")) is False
    assert pub.last.path == "/pub/job/primer/0.0.1/api/v1/perform"
    assert pub.last.headers["x-racetrack-auth"] == TOKEN


# The tracing id of the call a job serves reaches the jobs it calls.

CHAIN = """
    from racetrack_job_wrapper import call_job, call_job_async

    class JobEntrypoint:
        def perform(self, numbers: list[int]) -> list[bool]:
            return [call_job("primer", payload={"number": n}) for n in numbers]

        async def check(self, number: int) -> bool:
            return await call_job_async("primer", payload={"number": number})

        def auxiliary_endpoints(self):
            return {"/check": self.check}
"""


@pytest.fixture
def job_wrapper_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Job code imports ``racetrack_job_wrapper``: the package's name inside a job's env."""
    monkeypatch.setitem(sys.modules, "racetrack_job_wrapper", wrapper)


@pytest.mark.usefixtures("job_wrapper_name")
def test_a_def_method_forwards_the_tracing_id_of_its_call(
    pub: PubStandIn, write_job: Any, serve: Any
) -> None:
    with serve(write_job(CHAIN), job_name="python-chain") as client:
        answer = client.post(
            "/pub/job/python-chain/0.0.1/api/v1/perform",
            json={"numbers": [2, 3]},
            headers={"X-Request-Tracing-Id": "trace-one"},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == [True, True]
        assert [r.headers["x-request-tracing-id"] for r in pub.requests] == ["trace-one"] * 2

        client.post(
            "/api/v1/perform", json={"numbers": [5]}, headers={"X-Request-Tracing-Id": "two"}
        )
        assert pub.last.headers["x-request-tracing-id"] == "two"
        client.post("/api/v1/perform", json={"numbers": [7]})
        assert "x-request-tracing-id" not in pub.last.headers


@pytest.mark.usefixtures("job_wrapper_name")
def test_an_async_method_forwards_the_tracing_id_of_its_call(
    pub: PubStandIn, write_job: Any, serve: Any
) -> None:
    with serve(write_job(CHAIN), job_name="python-chain") as client:
        answer = client.post(
            "/api/v1/check", json={"number": 4}, headers={"X-Request-Tracing-Id": "trace-async"}
        )
        assert answer.status_code == 200, answer.text
    assert pub.last.headers["x-request-tracing-id"] == "trace-async"
    assert pub.last.headers["x-racetrack-auth"] == TOKEN


@pytest.mark.usefixtures("job_wrapper_name")
def test_concurrent_calls_each_forward_their_own_tracing_id(
    pub: PubStandIn, write_job: Any, serve: Any
) -> None:
    pub.delay = 0.05
    with serve(write_job(CHAIN), job_name="python-chain") as client:

        def call(tracing_id: str) -> None:
            client.post(
                "/api/v1/perform",
                json={"numbers": [1]},
                headers={"X-Request-Tracing-Id": tracing_id},
            )

        callers = [threading.Thread(target=call, args=(f"t{i}",)) for i in range(8)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join()
    forwarded = sorted(r.headers["x-request-tracing-id"] for r in pub.requests)
    assert forwarded == [f"t{i}" for i in range(8)]


@pytest.mark.usefixtures("job_wrapper_name")
def test_the_tracing_header_name_comes_from_the_environment(
    pub: PubStandIn, write_job: Any, serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUEST_TRACING_HEADER", "X-Trace")
    # Read once, when the wrapper is imported in the job's process; read again here.
    monkeypatch.setattr(chaining, "_tracing", chaining._tracing_header_from_env())
    with serve(write_job(CHAIN), job_name="python-chain") as client:
        client.post("/api/v1/perform", json={"numbers": [2]}, headers={"X-Trace": "custom"})
    assert pub.last.headers["x-trace"] == "custom"
    assert "x-request-tracing-id" not in pub.last.headers


@pytest.mark.usefixtures("job_wrapper_name")
def test_a_refused_chained_call_is_the_jobs_500_naming_the_refusal(
    pub: PubStandIn, write_job: Any, serve: Any
) -> None:
    pub.status = 403
    pub.body = b'{"error": "Job family python-chain has no permission"}'
    with serve(write_job(CHAIN), job_name="python-chain") as client:
        answer = client.post("/api/v1/perform", json={"numbers": [2]})
    assert answer.status_code == 500
    assert answer.json() == {
        "error": "calling job primer latest /api/v1/perform answered 403: "
        "Job family python-chain has no permission",
        "type": "JobCallError",
    }


SAMPLE = Path(__file__).resolve().parents[3] / "sample" / "python-chain"


@pytest.mark.usefixtures("job_wrapper_name")
def test_the_python_chain_sample_asks_primer_about_each_number(pub: PubStandIn, serve: Any) -> None:
    def primer(request: Recorded) -> bytes:
        number = json.loads(request.body)["number"]
        return json.dumps(number > 1 and all(number % i for i in range(2, number))).encode()

    pub.respond = primer
    with serve(SAMPLE, "JobEntrypoint", job_name="python-chain") as client:
        answer = client.post("/api/v1/perform", json={"numbers": [2, 7, 9, 7907]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"primes": [2, 7, 7907], "others": [9]}
    assert {r.path for r in pub.requests} == {"/pub/job/primer/latest/api/v1/perform"}
    assert [json.loads(r.body) for r in pub.requests] == [{"number": n} for n in (2, 7, 9, 7907)]


def test_the_tracing_id_is_unset_outside_a_call() -> None:
    assert wrapper.current_tracing_id() is None


def test_the_helper_needs_only_the_standard_library_and_the_wrapper() -> None:
    source = Path(wrapper.__file__).with_name("chaining.py").read_text()
    imported = {
        line.split()[1].split(".")[0]
        for line in source.splitlines()
        if line.startswith(("import ", "from "))
    }
    assert imported <= {
        "__future__",
        "asyncio",
        "json",
        "os",
        "urllib",
        "contextvars",
        "typing",
    } | {
        "starlette",
        "",
    }


# The original wrapper's module: call_job(self, job, path, payload, ...).


def test_the_original_call_job_takes_the_entrypoint_first(pub: PubStandIn) -> None:
    from racetrack_plugins.python3.wrapper import call as original_call

    pub.body = b"3"
    entrypoint = object()
    answer = original_call.call_job(entrypoint, "adder", "/api/v1/perform", {"a": 1, "b": 2})
    assert answer == 3
    assert (pub.last.method, pub.last.path) == ("POST", "/pub/job/adder/latest/api/v1/perform")
    assert json.loads(pub.last.body) == {"a": 1, "b": 2}
    assert pub.last.headers["x-racetrack-auth"] == TOKEN
    original_call.call_job(entrypoint, "adder", "/api/v1/parameters", None, "1.x", "GET", None)
    assert (pub.last.method, pub.last.path) == ("GET", "/pub/job/adder/1.x/api/v1/parameters")


def test_the_original_call_errors_are_runtime_errors_as_there(pub: PubStandIn) -> None:
    from racetrack_plugins.python3.wrapper import call as original_call

    pub.status, pub.body = 403, b'{"error": "no permission"}'
    with pytest.raises(RuntimeError, match="answered 403: no permission"):
        original_call.call_job(object(), "adder")


def test_call_job_coroutine_sends_the_same_request(pub: PubStandIn) -> None:
    import asyncio

    from racetrack_plugins.python3.wrapper import call as original_call

    pub.body = b'"ok"'
    answer = asyncio.run(original_call.call_job_coroutine(object(), "adder", payload={"a": 1}))
    assert answer == "ok"
    assert pub.last.path == "/pub/job/adder/latest/api/v1/perform"


def test_async_job_call_submits_to_pubs_async_calls_and_polls(pub: PubStandIn) -> None:
    from racetrack_plugins.python3.wrapper import call as original_call

    polls: list[str] = []

    def respond(request: Recorded) -> bytes:
        if request.path.startswith("/pub/async/new/"):
            return b'{"task_id": "t-1"}'
        polls.append(request.path)
        return b"42"

    pub.respond = respond
    assert original_call.async_job_call(object(), "adder", payload={"a": 40, "b": 2}) == 42
    submitted = pub.requests[0]
    assert (submitted.method, submitted.path) == (
        "POST",
        "/pub/async/new/job/adder/latest/api/v1/perform",
    )
    assert submitted.headers["x-racetrack-auth"] == TOKEN
    assert polls == ["/pub/async/task/t-1/poll"]
