"""The audit log: staff see everything; others see their own actions and readable jobs."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session
from starlette.testclient import TestClient

from racetrack_core.lifecycle import audit
from racetrack_core.lifecycle.audit import EventKind
from racetrack_core.settings import Settings
from racetrack_core.storage.database import connect
from racetrack_core.storage.models import JobFamily

PASSWORD = "a long enough pass phrase"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(home=tmp_path / "home", database_url=database_url, job_watch_interval=3600)


def auth(token: str) -> dict[str, str]:
    return {"X-Racetrack-Auth": token}


def activity(client: TestClient, token: str, query: str = "") -> list[str]:
    answer = client.get(f"/api/v1/audit/activity{query}", headers=auth(token))
    assert answer.status_code == 200, answer.text
    return [event["explanation"] for event in answer.json()["events"]]


def test_who_sees_which_events(client: TestClient, token: str, settings: Settings) -> None:
    engine = connect(settings.database_url)
    with Session(engine) as session:
        session.add(JobFamily(name="secret"))
        session.add(JobFamily(name="adder"))
        audit.record(
            session, EventKind.JOB_DEPLOYED, "admin", job_name="adder", job_version="1.0.0"
        )
        audit.record(
            session, EventKind.JOB_DEPLOYED, "admin", job_name="secret", job_version="1.0.0"
        )
        session.commit()
    engine.dispose()
    client.post(
        "/api/v1/users/register", json={"username": "jane@example.com", "password": PASSWORD}
    )
    client.post("/api/v1/users/jane@example.com/activate", headers=auth(token))
    jane = client.post(
        "/api/v1/users/login", json={"username": "jane@example.com", "password": PASSWORD}
    ).json()["token"]
    # Jane may read only adder: take away her read on every job, give it on adder alone.
    grants = client.get("/api/v1/grants?subject_name=jane@example.com", headers=auth(token)).json()
    read_all = next(g for g in grants if g["scope"] == "read_job")
    client.delete(f"/api/v1/grants/{read_all['id']}", headers=auth(token))
    client.post(
        "/api/v1/grants",
        json={
            "subject_kind": "user",
            "subject_name": "jane@example.com",
            "scope": "read_job",
            "job_family": "adder",
        },
        headers=auth(token),
    )
    client.post("/api/v1/tokens", headers=auth(jane))

    everything = activity(client, token)
    assert "admin deployed job secret 1.0.0" in everything
    assert "admin activated user jane@example.com" in everything
    assert everything[0] == "jane@example.com created a token for jane@example.com"

    seen = activity(client, jane)
    assert "admin deployed job adder 1.0.0" in seen
    assert "admin deployed job secret 1.0.0" not in seen
    assert "jane@example.com registered" in seen
    assert "admin activated user jane@example.com" in seen
    assert "admin granted User jane@example.com a permission 'read_job' on job adder" in seen
    assert "admin revoked a permission of User jane@example.com 'read_job' on every job" in seen

    answer = client.get(
        "/api/v1/audit/activity?job_name=adder&job_version=1.0.0&limit=10", headers=auth(token)
    ).json()
    assert answer["filter_job_name"] == "adder"
    assert answer["filter_job_version"] == "1.0.0"
    assert answer["filter_related_to_me"] is False
    assert [e["kind"] for e in answer["events"]] == ["job_deployed"]
    event = answer["events"][0]
    assert set(event) == {
        "id", "time", "kind", "actor", "job_name", "job_version", "subject", "details",
        "explanation",
    }  # fmt: skip

    mine = activity(client, jane, "?related_to_me=true")
    assert "admin deployed job adder 1.0.0" not in mine
    assert "jane@example.com created a token for jane@example.com" in mine
    assert activity(client, jane, "?job_name=secret") == []
    assert len(activity(client, token, "?limit=2")) == 2


def test_bad_queries_and_no_token(shared_client: TestClient) -> None:
    assert shared_client.get("/api/v1/audit/activity").status_code == 401
    token = shared_client.post(
        "/api/v1/users/login",
        json={"username": "admin", "password": "correct horse battery staple"},
    ).json()["token"]
    for limit in ("x", "0", "5000"):
        answer = shared_client.get(f"/api/v1/audit/activity?limit={limit}", headers=auth(token))
        assert answer.status_code == 400
        assert "limit" in answer.json()["error"]
