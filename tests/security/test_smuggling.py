"""Request smuggling at Pub's port of a real ``racetrack up``: bodies framed two ways at once
(``Content-Length`` and ``Transfer-Encoding``, two different lengths, an obfuscated or
non-final ``chunked``) get 400 and the connection closed, and the request hidden after them
never reaches the job; a request written inside a body reaches the job only as that body.

The job records every call it performs (``recording_job.py``), so "never reaches the job" is
read from what the job did, not from what Pub answered. Pub's parser (llhttp) refused every
case before these tests were written; they keep it so.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.security.recording_job import Recorder, recording_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

BODY = b'{"mark":"outer"}'


@pytest.fixture(scope="module")
def recorder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorder]:
    with recording_server(tmp_path_factory.mktemp("smuggling") / "home") as running:
        yield running


def hidden_request(recorder: Recorder) -> bytes:
    """A whole second call to the job, marked ``hidden``."""
    body = b'{"mark":"hidden"}'
    return recorder.head(f"content-length: {len(body)}") + body


def chunked(body: bytes) -> bytes:
    return b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body)


def smuggling_attempts(recorder: Recorder) -> dict[str, bytes]:
    hidden = hidden_request(recorder)
    after_chunks = chunked(BODY) + hidden
    return {
        # CL.TE: a front that reads Content-Length passes the hidden request on as body.
        "content-length and chunked": recorder.head(
            f"content-length: {len(after_chunks)}", "transfer-encoding: chunked"
        )
        + after_chunks,
        # TE.CL: a front that reads the chunks, a back end that reads 4 bytes.
        "chunked and content-length": recorder.head(
            "transfer-encoding: chunked", "content-length: 4"
        )
        + after_chunks,
        "two different content-lengths": recorder.head(
            f"content-length: {len(BODY)}", f"content-length: {len(BODY) + len(hidden)}"
        )
        + BODY
        + hidden,
        "chunked, identity": recorder.head(
            "transfer-encoding: chunked, identity", f"content-length: {len(BODY)}"
        )
        + after_chunks,
        "a space before the colon": recorder.head(
            "transfer-encoding : chunked", f"content-length: {len(BODY)}"
        )
        + after_chunks,
        "xchunked": recorder.head("transfer-encoding: xchunked") + after_chunks,
        "two transfer-encoding headers": recorder.head(
            "transfer-encoding: chunked", "transfer-encoding: identity"
        )
        + after_chunks,
        "a chunk size ended by a bare LF": recorder.head("transfer-encoding: chunked")
        + b"%x\n%b\r\n0\r\n\r\n" % (len(BODY), BODY)
        + hidden,
        "a vertical tab before chunked": recorder.head(
            "transfer-encoding:\x0bchunked", f"content-length: {len(BODY)}"
        )
        + after_chunks,
        "chunked folded onto a second line": recorder.head(
            "transfer-encoding: identity", " chunked"
        )
        + after_chunks,
        "a content-length folded onto a second line": recorder.head(
            f"content-length: {len(BODY) + len(hidden)}", " 3"
        )
        + BODY
        + hidden,
        "a signed content-length": recorder.head(f"content-length: +{len(BODY)}") + BODY + hidden,
        "a hexadecimal content-length": recorder.head("content-length: 0x10") + BODY + hidden,
        "a chunk size past 64 bits": recorder.head("transfer-encoding: chunked")
        + b"1" * 20
        + b"\r\n"
        + BODY
        + b"\r\n0\r\n\r\n"
        + hidden,
        "a content-length in the trailer": recorder.head("transfer-encoding: chunked")
        + b"%x\r\n%b\r\n0\r\ncontent-length: 99\r\n\r\n" % (len(BODY), BODY)
        + hidden,
        "a bare CR in a header": recorder.head("x-note: a\rb", f"content-length: {len(BODY)}")
        + BODY
        + hidden,
    }


CASES = [
    "content-length and chunked",
    "chunked and content-length",
    "two different content-lengths",
    "chunked, identity",
    "a space before the colon",
    "xchunked",
    "two transfer-encoding headers",
    "a chunk size ended by a bare LF",
    "a vertical tab before chunked",
    "chunked folded onto a second line",
    "a content-length folded onto a second line",
    "a signed content-length",
    "a hexadecimal content-length",
    "a chunk size past 64 bits",
    "a content-length in the trailer",
    "a bare CR in a header",
]


@pytest.mark.parametrize("case", CASES)
def test_an_ambiguously_framed_call_gets_400_and_its_hidden_request_never_reaches_the_job(
    recorder: Recorder, case: str
) -> None:
    before = recorder.performed()
    started = time.monotonic()
    answer = recorder.exchange(smuggling_attempts(recorder)[case])
    elapsed = time.monotonic() - started
    time.sleep(0.3)  # a request that did get through would be recorded by now

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert b"connection: close" in head.lower()
    assert json.loads(body)["error"].startswith("Bad request: malformed HTTP")
    assert answer.count(b"HTTP/1.1 ") == 1  # one answer, then the connection is closed
    assert elapsed < 4  # closed by Pub, not left to time out
    assert recorder.performed() == before  # neither the call nor the hidden one was performed
    assert recorder.server.call("recorder", "0.0.1", {"mark": "after"}).json() == "after"


def test_a_chunked_http_1_0_call_is_performed_once_and_what_follows_it_is_not(
    recorder: Recorder,
) -> None:
    """HTTP/1.0 has no chunked coding, but its framing is still unambiguous: Pub reads the
    chunks, answers once and closes (1.0 does not keep the connection), so the request after
    the chunks is never read."""
    before = recorder.performed()
    raw = recorder.head("transfer-encoding: chunked").replace(b"HTTP/1.1", b"HTTP/1.0", 1)

    answer = recorder.exchange(raw + chunked(BODY) + hidden_request(recorder))
    time.sleep(0.3)

    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert answer.count(b"HTTP/1.1 ") == 1
    assert recorder.performed() == [*before, "outer"]


def test_a_request_written_inside_a_body_reaches_the_job_only_as_that_body(
    recorder: Recorder,
) -> None:
    inner = hidden_request(recorder).decode()
    body = json.dumps({"mark": inner}).encode()
    before = recorder.performed()

    answer = recorder.exchange(
        recorder.head(f"content-length: {len(body)}", "connection: close") + body
    )

    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert answer.count(b"HTTP/1.1 ") == 1
    assert recorder.performed() == [*before, inner]


def test_a_second_request_framed_plainly_is_performed_so_the_record_would_show_a_hidden_one(
    recorder: Recorder,
) -> None:
    """The control: two calls pipelined on one connection, each framed once, are both
    performed. The assertions above would therefore see a hidden request that got through."""
    before = recorder.performed()
    first = recorder.head(f"content-length: {len(BODY)}") + BODY
    second = recorder.head("content-length: 17", "connection: close") + b'{"mark":"second"}'

    answer = recorder.exchange(first + second)

    assert answer.count(b"HTTP/1.1 200 ") == 2, answer[:600]
    assert recorder.performed() == [*before, "outer", "second"]
