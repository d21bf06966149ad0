"""D10 against a real ``racetrack up``: a call whose chunked body has a malformed chunk gets
400 from Pub within seconds, and is neither performed by the job nor counted against it in
Pub's metrics. It used to wait ``upstream_timeout`` (300 s) and end as a 504, counted as the
job's error. The in-process form of this test is in ``tests/pub/test_front_http.py``.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.security.recording_job import NAME, VERSION, Recorder, recording_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

BAD_CHUNK = b"zz\r\nnot a chunk size\r\n"


@pytest.fixture(scope="module")
def recorder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorder]:
    with recording_server(tmp_path_factory.mktemp("chunked") / "home") as running:
        yield running


def job_metrics(recorder: Recorder) -> dict[str, float]:
    """Pub's metric samples about the recording job, by their line's name and labels."""
    text = httpx.get(f"{recorder.server.pub}/metrics", timeout=10).text
    found = {}
    for line in text.splitlines():
        if not line.startswith("#") and f'job_name="{NAME}"' in line:
            series, _, value = line.rpartition(" ")
            if not series.endswith("_created"):
                found[series] = float(value)
    return found


def test_a_good_chunked_call_is_performed_and_counted(recorder: Recorder) -> None:
    """The control: the same call well framed reaches the job, and Pub counts it."""
    before = job_metrics(recorder)
    body = b'{"mark":"chunked"}'
    answer = recorder.exchange(
        recorder.head("transfer-encoding: chunked", "connection: close")
        + b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body)
    )

    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert recorder.performed()[-1] == "chunked"
    assert job_metrics(recorder) != before


@pytest.mark.parametrize("streaming", [False, True], ids=["with-the-head", "after-a-pause"])
def test_a_malformed_chunk_gets_400_at_once_and_is_not_counted_against_the_job(
    recorder: Recorder, streaming: bool
) -> None:
    """``after-a-pause``: the call has already gone on to the job with its first chunk when
    the bad one comes."""
    head = recorder.head("transfer-encoding: chunked")
    first = b'9\r\n{"mark":"\r\n'
    before_calls = recorder.performed()
    before = job_metrics(recorder)
    started = time.monotonic()
    if streaming:
        with socket.create_connection(("127.0.0.1", recorder.pub_port), timeout=10) as sock:
            sock.sendall(head + first)
            time.sleep(0.5)
            sock.sendall(BAD_CHUNK)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
    else:
        answer = recorder.exchange(head + first + BAD_CHUNK, timeout=10)
    elapsed = time.monotonic() - started
    time.sleep(0.5)  # for anything the job or Pub would still record

    head_text, _, body = answer.partition(b"\r\n\r\n")
    assert elapsed < 5, f"answered after {elapsed:.1f} s"
    assert head_text.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert b"connection: close" in head_text.lower()
    assert json.loads(body)["error"].startswith("Bad request: malformed HTTP")
    assert recorder.performed() == before_calls
    after = job_metrics(recorder)
    assert not [series for series in after if series.startswith("pub_job_proxy_errors")]
    assert not [series for series in after if 'status="504"' in series]
    assert after == before
    assert recorder.server.call(NAME, VERSION, {"mark": "after"}).json() == "after"
