"""Hostile request bodies sent to a real Lifecycle: deep JSON (D5), bodies over the limit (D6)
and build contexts measured by their real compressed size (D11)."""

from __future__ import annotations

import base64
import gzip
import io
import os
import socket
import tarfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from racetrack_core.testing.server import RacetrackServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
MiB = 1024 * 1024
MANIFEST = {
    "name": "big-context",
    "owner_email": "owner@example.com",
    "jobtype": "python3:latest",
    "jobtype_extra": {"entrypoint_path": "entrypoint.py", "requirements_path": "missing.txt"},
}


def raw_request(server: RacetrackServer, head: str, body_parts: list[bytes]) -> bytes:
    """Send ``head`` and then ``body_parts`` (stopping if the server closes), then read what
    the server answered."""
    address = urlsplit(server.remote)
    with socket.create_connection((address.hostname, address.port), timeout=20) as sock:
        sock.sendall(head.encode())
        for part in body_parts:
            try:
                sock.sendall(part)
            except OSError:  # the server answered and closed: it stopped reading
                break
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and answer.rstrip().endswith(b"}"):
                    break
        except OSError:
            pass
    return answer


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


# -- D5: deep JSON ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/users/login", "/users/register", "/deploy"])
def test_deeply_nested_json_is_a_400(shared_server: RacetrackServer, path: str) -> None:
    for body in ("[" * 100_000, "[" * 5_000 + "]" * 5_000, '{"a":' * 500 + "1" + "}" * 500):
        answer = shared_server.api(
            "POST", path, content=body, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 400, answer.text
        assert "nest" in answer.json()["error"], answer.text


# -- D6: body limits --------------------------------------------------------------------------


def test_a_declared_200_mb_body_is_refused_before_it_is_read(
    shared_server: RacetrackServer,
) -> None:
    pid = shared_server.process.pid if shared_server.process else 0
    before = rss_kib(pid)
    head = (
        "POST /lifecycle/api/v1/users/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {200 * MiB}\r\n\r\n"
    )
    started = time.monotonic()
    answer = raw_request(shared_server, head, [b" " * MiB] * 200)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"at most" in answer, answer
    assert time.monotonic() - started < 10
    assert rss_kib(pid) - before < 50 * 1024, "the server kept what it was sent"


def test_a_chunked_body_is_cut_off_at_the_limit(shared_server: RacetrackServer) -> None:
    pid = shared_server.process.pid if shared_server.process else 0
    before = rss_kib(pid)
    head = (
        "POST /api/v1/users/register HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = f"{MiB:x}\r\n".encode() + b" " * MiB + b"\r\n"
    answer = raw_request(shared_server, head, [chunk] * 200)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert rss_kib(pid) - before < 50 * 1024, "the server kept what it was sent"


def test_every_json_route_has_a_small_limit(shared_server: RacetrackServer) -> None:
    big = b'{"x": "' + b"a" * (2 * MiB) + b'"}'
    for method, path in [
        ("POST", "/users/login"),
        ("POST", "/tokens"),
        ("POST", "/grants"),
        ("POST", "/escs"),
        ("POST", "/job/x/1.0.0/redeploy"),
        ("PUT", "/users/change_password"),
        ("DELETE", "/job/x/1.0.0"),
    ]:
        answer = shared_server.api(method, path, content=big)
        assert answer.status_code == 413, (path, answer.text)
        assert answer.json()["type"] == "PayloadTooLarge"


# -- D11: the build-context limit counts compressed bytes ------------------------------------


def random_context(size: int) -> str:
    """A build context whose compressed size is about ``size`` bytes (random data)."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=1) as gz,
        tarfile.open(fileobj=gz, mode="w") as tar,
    ):
        data = os.urandom(size)
        info = tarfile.TarInfo("data.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return base64.b64encode(buffer.getvalue()).decode()


def test_a_50_mib_context_is_accepted(shared_server: RacetrackServer) -> None:
    context = random_context(50 * MiB)
    answer = shared_server.api(
        "POST", "/deploy", json={"manifest": MANIFEST, "build_context": context}, timeout=120
    )
    assert answer.status_code == 200, answer.text[:500]


def test_a_context_over_the_limit_is_refused_with_its_real_size(
    shared_server: RacetrackServer,
) -> None:
    context = random_context(65 * MiB)
    manifest = {**MANIFEST, "name": "too-big-context"}
    answer = shared_server.api(
        "POST", "/deploy", json={"manifest": manifest, "build_context": context}, timeout=120
    )
    assert answer.status_code == 413, answer.text[:500]
    message = answer.json()["error"]
    assert "65.0 MiB compressed" in message, message
    assert "64 MiB" in message, message


def test_a_huge_deploy_body_is_refused_before_it_is_read(shared_server: RacetrackServer) -> None:
    head = (
        "POST /api/v1/deploy HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"{'X-Racetrack-Auth'}: {shared_server.token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {500 * MiB}\r\n\r\n"
    )
    answer = raw_request(shared_server, head, [b" " * MiB] * 500)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]


def test_httpx_sees_the_413_too(shared_server: RacetrackServer) -> None:
    """An ordinary client that sends a whole oversized body gets the answer, not a reset."""
    try:
        answer = httpx.post(
            f"{shared_server.lifecycle}/api/v1/users/login", content=b"x" * (4 * MiB), timeout=30
        )
    except httpx.HTTPError as error:  # pragma: no cover - depends on socket timing
        pytest.fail(f"the client saw {error!r} instead of a 413")
    assert answer.status_code == 413
