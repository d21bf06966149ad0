"""End to end on ``racetrack up``: a job calling a job, and a public endpoint.

``python-chain`` asks ``primer`` about each number through Pub with its family's token: Pub
refuses the inner call until an administrator grants the family ``call_job`` on primer. A
manifest's ``public_endpoints`` are callable without a token only while approved.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from racetrack_core.testing.server import RacetrackServer
from tests.e2e.test_up import UNAUTHENTICATED, deploy_primer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

CHAIN_DIR = Path(__file__).resolve().parents[2] / "sample" / "python-chain"
NUMBERS = {"numbers": [2, 9, 7907, 7906]}
#: Pub keeps permission answers for 1 s in these tests (RACETRACK_PUB_AUTH_CACHE_TTL).
SETTLE = 15.0


def eventually(call: Callable[[], httpx.Response], expected: int) -> httpx.Response:
    """Call until the status is ``expected`` (Pub's cached answers expire), or time out."""
    deadline = time.monotonic() + SETTLE
    answer = call()
    while answer.status_code != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        answer = call()
    return answer


def test_python_chain_calls_primer_only_once_granted(server: RacetrackServer) -> None:
    server.login()
    assert deploy_primer(server)["status"] == "done"
    record = server.deploy_folder(CHAIN_DIR)
    assert record["status"] == "done", record

    refused = server.call("python-chain", "latest", NUMBERS)
    assert refused.status_code == 500, refused.text
    assert refused.json() == {
        "error": "calling job primer latest /api/v1/perform answered 403: Forbidden: Job family "
        "python-chain has no permission 'call_job' on job primer; ask an administrator to "
        "grant it",
        "type": "JobCallError",
    }

    granted = server.api(
        "POST",
        "/grants",
        json={
            "subject_kind": "job_family",
            "subject_name": "python-chain",
            "scope": "call_job",
            "job_family": "primer",
        },
    )
    assert granted.status_code == 200, granted.text

    answer = eventually(lambda: server.call("python-chain", "latest", NUMBERS), 200)
    assert answer.status_code == 200, f"{answer.text}\n{server.log()}"
    assert answer.json() == {"primes": [2, 7907], "others": [9, 7906]}


def test_a_public_endpoint_is_open_only_while_approved(server: RacetrackServer) -> None:
    server.login()
    record = deploy_primer(server, manifest={"public_endpoints": ["/api/v1/perform"]})
    assert record["status"] == "done", record

    def anonymous() -> httpx.Response:
        return server.call("primer", "0.0.1", {"number": 7907}, token=None)

    before = anonymous()
    assert (before.status_code, before.json()) == (401, UNAUTHENTICATED)
    requests = server.api("GET", "/job/primer/0.0.1/public-endpoints").json()
    assert [(r["endpoint"], r["active"]) for r in requests] == [("/api/v1/perform", False)]
    pending = server.api("GET", "/public-endpoints?pending=true").json()
    assert [r["id"] for r in pending] == [requests[0]["id"]]

    approved = server.api("POST", f"/public-endpoints/{requests[0]['id']}/approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["active"] is True
    opened = eventually(anonymous, 200)
    assert opened.status_code == 200, f"{opened.text}\n{server.log()}"
    assert opened.json() is True
    # Only the approved prefix is open; the job's other paths still need a token.
    other = httpx.get(f"{server.pub}/job/primer/0.0.1/api/v1/parameters", timeout=30)
    assert (other.status_code, other.json()) == (401, UNAUTHENTICATED)

    revoked = server.api("DELETE", f"/public-endpoints/{requests[0]['id']}/approve")
    assert revoked.status_code == 200, revoked.text
    closed = eventually(anonymous, 401)
    assert (closed.status_code, closed.json()) == (401, UNAUTHENTICATED)
    # Callers with a token are not affected.
    assert server.call("primer", "0.0.1", {"number": 7907}).json() is True
