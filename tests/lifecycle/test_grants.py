"""Grants: staff give a subject a scope on every job, a family, a version or an endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select
from starlette.testclient import TestClient

from racetrack_core.settings import Settings
from racetrack_core.storage.database import connect
from racetrack_core.storage.models import AuditEvent
from tests.lifecycle.records import add_jobs

PASSWORD = "a long enough pass phrase"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(home=tmp_path / "home", database_url=database_url, job_watch_interval=3600)


def auth(token: str) -> dict[str, str]:
    return {"X-Racetrack-Auth": token}


def new_esc(client: TestClient, admin: str, name: str) -> str:
    client.post("/api/v1/escs", json={"name": name}, headers=auth(admin))
    token: str = client.post(f"/api/v1/escs/{name}/auth_token", headers=auth(admin)).json()["token"]
    return token


def grant(client: TestClient, admin: str, **body: Any) -> dict[str, Any]:
    answer = client.post("/api/v1/grants", json=body, headers=auth(admin))
    assert answer.status_code == 200, answer.text
    record: dict[str, Any] = answer.json()
    return record


def may_call(client: TestClient, token: str, name: str, version: str, path: str) -> bool:
    answer = client.get(f"/api/v1/auth/can-call-job/{name}/{version}/{path}", headers=auth(token))
    assert answer.status_code in (200, 403), answer.text
    return bool(answer.status_code == 200)


JOBS = [("adder", "1.0.0"), ("adder", "2.0.0"), ("primer", "1.0.0")]
CALLS = [
    ("adder", "1.0.0", "api/v1/perform"),
    ("adder", "1.0.0", "api/v2/perform"),
    ("adder", "2.0.0", "api/v1/perform"),
    ("primer", "1.0.0", "api/v1/perform"),
]


@pytest.mark.parametrize(
    ("granted", "allowed"),
    [
        ({}, [True, True, True, True]),
        ({"job_family": "adder"}, [True, True, True, False]),
        ({"job_family": "adder", "job_version": "1.0.0"}, [True, True, False, False]),
        ({"job_family": "adder", "endpoint": "api/v1/"}, [True, False, True, False]),
        (
            {"job_family": "adder", "job_version": "1.0.0", "endpoint": "/api/v1"},
            [True, False, False, False],
        ),
    ],
)
def test_each_granularity_of_a_call_grant(
    client: TestClient,
    token: str,
    settings: Settings,
    granted: dict[str, str],
    allowed: list[bool],
) -> None:
    add_jobs(settings, *JOBS)
    esc = new_esc(client, token, "caller")
    assert [may_call(client, esc, *call) for call in CALLS] == [False] * 4
    record = grant(
        client, token, subject_kind="esc", subject_name="caller", scope="call_job", **granted
    )
    assert [may_call(client, esc, *call) for call in CALLS] == allowed
    mine = client.get("/api/v1/grants/mine", headers=auth(esc)).json()
    assert [g["id"] for g in mine] == [record["id"]]
    client.delete(f"/api/v1/grants/{record['id']}", headers=auth(token))
    assert [may_call(client, esc, *call) for call in CALLS] == [False] * 4


def test_grants_are_listed_filtered_and_audited(
    client: TestClient, token: str, settings: Settings
) -> None:
    add_jobs(settings, ("adder", "1.0.0"), ("primer", "1.0.0"))
    new_esc(client, token, "caller")
    client.post(
        "/api/v1/users/register", json={"username": "jane@example.com", "password": PASSWORD}
    )
    first = grant(
        client,
        token,
        subject_kind="esc",
        subject_name="caller",
        scope="read_job",
        job_family="adder",
    )
    assert first["subject"] == "ESC caller"
    assert first["granted_by"] == "admin"
    same = grant(
        client,
        token,
        subject_kind="esc",
        subject_name="caller",
        scope="read_job",
        job_family="adder",
    )
    assert same["id"] == first["id"]
    chained = client.post(
        "/api/v1/auth/allow/job_family/primer/job/adder/scope/call_job", headers=auth(token)
    ).json()
    assert chained["subject"] == "Job family primer"

    def listed(query: str) -> list[str]:
        answer = client.get(f"/api/v1/grants{query}", headers=auth(token))
        return sorted(f"{g['subject']}:{g['scope']}" for g in answer.json())

    assert listed("?subject_kind=esc") == ["ESC caller:read_job"]
    assert listed("?job_family=adder") == ["ESC caller:read_job", "Job family primer:call_job"]
    assert listed("?subject_kind=user&subject_name=jane@example.com") == [
        "User jane@example.com:call_job",
        "User jane@example.com:deploy_new_family",
        "User jane@example.com:read_job",
    ]

    assert client.delete(f"/api/v1/grants/{first['id']}", headers=auth(token)).json() is None
    assert client.delete(f"/api/v1/grants/{first['id']}", headers=auth(token)).status_code == 404

    engine = connect(settings.database_url)
    with Session(engine) as session:
        kinds = [e.kind for e in session.exec(select(AuditEvent))]
    engine.dispose()
    assert kinds.count("permission_granted") == 2
    assert kinds.count("permission_revoked") == 1


ESC = {"subject_kind": "esc", "subject_name": "caller"}
CALL = {**ESC, "scope": "call_job"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**CALL, "subject_kind": "robot"}, "field 'subject_kind' must be one of \"user\""),
        ({**ESC, "scope": "call"}, "field 'scope' must be one of \"read_job\""),
        ({**CALL, "subject_name": "nobody"}, "no external service consumer"),
        ({**CALL, "subject_kind": "user", "subject_name": "no@x.io"}, "no user named"),
        ({**CALL, "subject_kind": "job_family", "subject_name": "ghost"}, "no job family named"),
        ({**CALL, "job_family": "ghost"}, "deploy a job named ghost first"),
        ({**CALL, "job_version": "1.0.0"}, "needs 'job_family'"),
        ({**CALL, "endpoint": "/x"}, "needs 'job_family'"),
        ({"subject_kind": "esc", "scope": "call_job"}, "'subject_name' is required"),
        ({**CALL, "job_family": 7}, "'job_family' must be a string"),
    ],
)
def test_a_bad_grant_is_refused_with_the_reason(
    shared_client: TestClient, body: dict[str, str], message: str
) -> None:
    token = shared_client.post(
        "/api/v1/users/login",
        json={"username": "admin", "password": "correct horse battery staple"},
    ).json()["token"]
    new_esc(shared_client, token, "caller")
    answer = shared_client.post("/api/v1/grants", json=body, headers=auth(token))
    assert answer.status_code == 400
    assert message in answer.json()["error"]


def test_only_staff_or_admin_api_holders_grant(
    client: TestClient, token: str, settings: Settings
) -> None:
    add_jobs(settings, ("adder", "1.0.0"))
    esc = new_esc(client, token, "ops")
    body = {"subject_kind": "esc", "subject_name": "ops", "scope": "call_job"}
    for method, path in [
        ("GET", "/api/v1/grants"),
        ("POST", "/api/v1/grants"),
        ("DELETE", "/api/v1/grants/x"),
        ("POST", "/api/v1/auth/allow/esc/ops/job/adder/scope/call_job"),
        ("POST", "/api/v1/auth/allow/job_family/adder/job/adder/scope/call_job"),
    ]:
        assert client.request(method, path, json=body, headers=auth(esc)).status_code == 403
        assert client.request(method, path, json=body).status_code == 401
    # call_admin_api on every job opens the administration routes (but not making staff).
    grant(client, token, subject_kind="esc", subject_name="ops", scope="call_admin_api")
    assert client.get("/api/v1/grants", headers=auth(esc)).status_code == 200
    assert client.get("/api/v1/users", headers=auth(esc)).status_code == 200
    staff = client.post("/api/v1/users/admin/staff", json={"is_staff": False}, headers=auth(esc))
    assert staff.status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "api/v1/perform/%2E%2E/%2E%2E/docs",
        "api/v1/perform/%2e%2e%2F%2e%2e%2Fopenapi.json",
        "api/v1/perform/..%5C..%5Cdocs",
        "api/v1/perform/%2E/x",
    ],
)
def test_a_grant_on_an_endpoint_does_not_stretch_over_dot_segments(
    client: TestClient, token: str, settings: Settings, path: str
) -> None:
    """Lifecycle takes the path percent-decoded: ``..`` is never within a granted prefix."""
    add_jobs(settings, ("adder", "1.0.0"))
    esc = new_esc(client, token, "caller")
    grant(
        client,
        token,
        subject_kind="esc",
        subject_name="caller",
        scope="call_job",
        job_family="adder",
        endpoint="/api/v1/perform",
    )

    assert may_call(client, esc, "adder", "1.0.0", "api/v1/perform/x")
    assert not may_call(client, esc, "adder", "1.0.0", path)
