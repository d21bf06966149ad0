"""Lifecycle's storage of asynchronous calls: Pub's internal token only, CRUD, expiry."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session
from starlette.testclient import TestClient

from racetrack_core.pub.config import PubConfig
from racetrack_core.settings import Settings
from racetrack_core.storage.database import connect
from racetrack_core.storage.models import AsyncJobCall

INTERNAL_TOKEN = "internal-token-for-the-async-tests"
INTERNAL = {"X-Racetrack-Auth": INTERNAL_TOKEN}
KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        home=tmp_path / "home",
        database_url=database_url,
        internal_token=INTERNAL_TOKEN,
        pub=PubConfig(async_call_lifetime=600.0),
    )


def new_task(**changes: Any) -> dict[str, Any]:
    return {
        "id": KEY,
        "job_name": "primer",
        "job_version": "0.0.1",
        "method": "post",
        "path": "/api/v1/perform",
        "query": "a=1",
        "request_headers": [["content-type", "application/json"], ["x-caller-name", "User a"]],
        "request_body": base64.b64encode(b'{"number": 7907}').decode(),
        "caller": "User admin",
        **changes,
    }


@pytest.mark.parametrize("prefix", ["", "/lifecycle"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/async/task"),
        ("GET", "/api/v1/async/task"),
        ("DELETE", "/api/v1/async/task"),
        ("GET", f"/api/v1/async/task/{KEY}"),
        ("PATCH", f"/api/v1/async/task/{KEY}"),
    ],
)
def test_only_the_internal_token_reaches_the_storage(
    client: TestClient, token: str, prefix: str, method: str, path: str
) -> None:
    missing = client.request(method, prefix + path, json={})
    assert missing.status_code == 401
    unknown = client.request(method, prefix + path, json={}, headers={"X-Racetrack-Auth": "x"})
    assert unknown.status_code == 401

    staff = client.request(method, prefix + path, json={}, headers={"X-Racetrack-Auth": token})

    assert staff.status_code == 403
    assert staff.json()["type"] == "Forbidden"
    assert "only Pub may" in staff.json()["error"]


def test_create_read_update_a_task(client: TestClient) -> None:
    created = client.post("/api/v1/async/task", json=new_task(), headers=INTERNAL)
    assert created.status_code == 201, created.text
    record = created.json()
    assert record["status"] == "ongoing"
    assert record["attempts"] == 0
    assert record["method"] == "POST"
    assert base64.b64decode(record["request_body"]) == b'{"number": 7907}'
    assert 599 < record["expires_at"] - record["created_at"] <= 600

    again = client.post("/api/v1/async/task", json=new_task(), headers=INTERNAL)
    assert again.status_code == 409

    claimed = client.patch(
        f"/api/v1/async/task/{KEY}", json={"attempts": 1, "if_attempts": 0}, headers=INTERNAL
    )
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["attempts"] == 1
    # A second worker claiming the same attempt loses.
    lost = client.patch(
        f"/api/v1/async/task/{KEY}", json={"attempts": 1, "if_attempts": 0}, headers=INTERNAL
    )
    assert lost.status_code == 409

    done = client.patch(
        f"/api/v1/async/task/{KEY}",
        json={
            "status": "completed",
            "if_attempts": 1,
            "response_status": 200,
            "response_headers": [["content-type", "application/json"]],
            "response_body": base64.b64encode(b"true").decode(),
        },
        headers=INTERNAL,
    )
    assert done.status_code == 200, done.text

    record = client.get(f"/api/v1/async/task/{KEY}", headers=INTERNAL).json()
    assert record["status"] == "completed"
    assert record["response_status"] == 200
    assert record["response_headers"] == [["content-type", "application/json"]]
    assert base64.b64decode(record["response_body"]) == b"true"

    # A finished task never changes again.
    late = client.patch(f"/api/v1/async/task/{KEY}", json={"status": "failed"}, headers=INTERNAL)
    assert late.status_code == 409
    assert "completed" in late.json()["error"]


def test_listing_gives_ongoing_tasks_and_honours_idle_for(client: TestClient) -> None:
    client.post("/api/v1/async/task", json=new_task(), headers=INTERNAL)
    other = new_task(id="f" * 32)
    client.post("/api/v1/async/task", json=other, headers=INTERNAL)
    client.patch(f"/api/v1/async/task/{'f' * 32}", json={"status": "failed"}, headers=INTERNAL)

    ongoing = client.get("/api/v1/async/task", headers=INTERNAL).json()
    idle = client.get("/api/v1/async/task?idle_for=60", headers=INTERNAL).json()

    assert [task["id"] for task in ongoing] == [KEY]
    assert idle == []
    assert client.get("/api/v1/async/task?status=nope", headers=INTERNAL).status_code == 400


def test_expired_tasks_are_not_found_and_are_purged(client: TestClient, settings: Settings) -> None:
    client.post("/api/v1/async/task", json=new_task(), headers=INTERNAL)
    client.post("/api/v1/async/task", json=new_task(id="e" * 32, lifetime=0.5), headers=INTERNAL)
    time.sleep(0.6)

    assert client.get(f"/api/v1/async/task/{'e' * 32}", headers=INTERNAL).status_code == 404
    gone = client.patch(f"/api/v1/async/task/{'e' * 32}", json={}, headers=INTERNAL)
    assert gone.status_code == 404
    purged = client.delete("/api/v1/async/task", headers=INTERNAL)

    assert purged.json() == {"deleted": 1}
    engine = connect(settings.database_url)
    with Session(engine) as session:
        assert session.get(AsyncJobCall, "e" * 32) is None
        assert session.get(AsyncJobCall, KEY) is not None
    engine.dispose()


@pytest.mark.parametrize(
    "changes",
    [
        {"id": "not a key!"},
        {"request_body": "***"},
        {"request_headers": [["only-a-name"]]},
        {"lifetime": -1},
        {"job_name": ""},
        {"surprise": 1},
    ],
)
def test_malformed_tasks_are_refused(client: TestClient, changes: dict[str, Any]) -> None:
    answer = client.post("/api/v1/async/task", json=new_task(**changes), headers=INTERNAL)

    assert answer.status_code == 400
    assert answer.json()["type"] == "BadRequest"


def test_unknown_task_is_404(client: TestClient) -> None:
    assert client.get(f"/api/v1/async/task/{KEY}", headers=INTERNAL).status_code == 404
    assert client.get("/api/v1/async/task/..%2f", headers=INTERNAL).status_code == 404
    assert client.patch(f"/api/v1/async/task/{KEY}", json={}, headers=INTERNAL).status_code == 404


@pytest.mark.parametrize("field", ["attempts", "response_status", "if_attempts"])
def test_an_update_with_a_number_too_large_to_store_is_400(client: TestClient, field: str) -> None:
    """schemathesis sent ``attempts: 2**70``: SQLite could not store it and the answer was
    a 500."""
    assert client.post("/api/v1/async/task", json=new_task(), headers=INTERNAL).status_code == 201
    answer = client.patch(f"/api/v1/async/task/{KEY}", json={field: 2**70}, headers=INTERNAL)

    assert answer.status_code == 400, answer.text
    assert answer.json()["error"].startswith(f"field '{field}' must be at most")


def test_a_whole_number_sent_as_a_float_is_taken(client: TestClient) -> None:
    """JSON and its schemas do not tell 1.0 from 1: schemathesis sent ``attempts: 0.0``,
    which the document allows, and the route refused it."""
    assert client.post("/api/v1/async/task", json=new_task(), headers=INTERNAL).status_code == 201
    answer = client.patch(
        f"/api/v1/async/task/{KEY}", json={"attempts": 1.0, "if_attempts": 0.0}, headers=INTERNAL
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["attempts"] == 1
    half = client.patch(f"/api/v1/async/task/{KEY}", json={"attempts": 1.5}, headers=INTERNAL)
    assert half.status_code == 400
