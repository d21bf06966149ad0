"""``POST /api/v1/job/call-times``: Pub's batched reports of last call times (internal only)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from racetrack_core.settings import Settings
from tests.lifecycle.records import add_jobs

INTERNAL_TOKEN = "internal-token-for-the-call-time-tests"
INTERNAL = {"X-Racetrack-Auth": INTERNAL_TOKEN}
ROUTE = "/api/v1/job/call-times"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    home = tmp_path / "home"
    return Settings(home=home, database_url=database_url, internal_token=INTERNAL_TOKEN)


def report(client: TestClient, *calls: tuple[str, str, float]) -> Any:
    body = {"calls": [{"name": n, "version": v, "last_call_time": t} for n, v, t in calls]}
    return client.post(ROUTE, json=body, headers=INTERNAL)


def last_call(client: TestClient, token: str, name: str, version: str) -> Any:
    answer = client.get(f"/api/v1/job/{name}/{version}", headers={"X-Racetrack-Auth": token})
    assert answer.status_code == 200, answer.text
    return answer.json()["last_call_time"]


def test_a_report_sets_last_call_time_and_it_only_moves_forwards(
    client: TestClient, settings: Settings, token: str
) -> None:
    add_jobs(settings, ("primer", "0.0.1"), ("primer", "0.0.2"), ("adder", "1.0.0"))
    assert last_call(client, token, "primer", "0.0.1") is None
    now = time.time()

    answer = report(client, ("primer", "0.0.1", now - 5), ("adder", "1.0.0", now - 1))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"updated": 2}
    assert last_call(client, token, "primer", "0.0.1") == int(now - 5)
    assert last_call(client, token, "adder", "1.0.0") == int(now - 1)
    assert last_call(client, token, "primer", "0.0.2") is None

    # Another Pub replica reporting an older call does not move the time back.
    assert report(client, ("primer", "0.0.1", now - 60)).json() == {"updated": 0}
    assert last_call(client, token, "primer", "0.0.1") == int(now - 5)
    # A job that is unknown (deleted meanwhile) is no error.
    assert report(client, ("gone", "1.0.0", now)).json() == {"updated": 0}
    # The listing carries the same field, under the original's name.
    listing = client.get("/api/v1/job", headers={"X-Racetrack-Auth": token}).json()
    by_version = {(job["name"], job["version"]): job["last_call_time"] for job in listing}
    assert by_version[("adder", "1.0.0")] == int(now - 1)


def test_a_time_from_the_future_is_cut_back_to_now(
    client: TestClient, settings: Settings, token: str
) -> None:
    add_jobs(settings, ("primer", "0.0.1"))
    report(client, ("primer", "0.0.1", time.time() + 10 * 86400))
    assert last_call(client, token, "primer", "0.0.1") <= time.time() + 61


@pytest.mark.parametrize("prefix", ["", "/lifecycle"])
def test_only_the_internal_token_may_report(client: TestClient, token: str, prefix: str) -> None:
    body: dict[str, Any] = {"calls": []}
    assert client.post(prefix + ROUTE, json=body).status_code == 401
    staff = client.post(prefix + ROUTE, json=body, headers={"X-Racetrack-Auth": token})
    assert staff.status_code == 403
    assert "only Pub may" in staff.json()["error"]
    assert client.post(prefix + ROUTE, json=body, headers=INTERNAL).json() == {"updated": 0}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({}, "calls"),
        ({"calls": {}}, "calls"),
        ({"calls": [{"name": "a", "version": "1"}]}, "calls[0]"),
        ({"calls": [{"name": "", "version": "1", "last_call_time": 1}]}, "calls[0].name"),
        ({"calls": [{"name": "a", "version": 1, "last_call_time": 1}]}, "calls[0].version"),
        ({"calls": [{"name": "a", "version": "1", "last_call_time": "x"}]}, "last_call_time"),
        ({"calls": [{"name": "a", "version": "1", "last_call_time": True}]}, "last_call_time"),
        ({"calls": [{"name": "a", "version": "1", "last_call_time": 1}] * 1001}, "at most 1000"),
    ],
)
def test_a_malformed_report_is_a_400_naming_the_field(
    client: TestClient, body: dict[str, Any], named: str
) -> None:
    answer = client.post(ROUTE, json=body, headers=INTERNAL)
    assert answer.status_code == 400, answer.text
    assert named in answer.json()["error"]
