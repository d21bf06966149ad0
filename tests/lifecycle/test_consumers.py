"""External service consumers: staff create them and their tokens; an ESC token calls a job
only with a grant."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlmodel import Session, select
from starlette.testclient import TestClient

from racetrack_core.settings import Settings
from racetrack_core.storage.database import connect
from racetrack_core.storage.models import AuditEvent
from tests.lifecycle.records import add_jobs


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    # The watcher stays out of the way of the job records these tests write by hand.
    return Settings(home=tmp_path / "home", database_url=database_url, job_watch_interval=3600)


def auth(token: str) -> dict[str, str]:
    return {"X-Racetrack-Auth": token}


def test_an_esc_calls_only_what_it_is_granted(
    client: TestClient, token: str, settings: Settings
) -> None:
    add_jobs(settings, ("adder", "0.0.1"))
    add_jobs(settings, ("primer", "0.0.1"))
    created = client.post("/api/v1/escs", json={"name": "billing"}, headers=auth(token))
    assert created.status_code == 200, created.text
    esc = created.json()
    assert esc["name"] == "billing"
    issued = client.post(
        f"/api/v1/escs/{esc['id']}/auth_token", json={"expiry_time": None}, headers=auth(token)
    ).json()
    esc_token = issued["token"]

    path = "/api/v1/auth/can-call-job/{}/latest/api/v1/perform"
    refused = client.get(path.format("adder"), headers=auth(esc_token))
    assert refused.status_code == 403
    assert "ESC billing has no permission 'call_job'" in refused.json()["error"]

    granted = client.post(
        f"/api/v1/auth/allow/esc/{esc['id']}/job/adder/scope/call_job", headers=auth(token)
    )
    assert granted.status_code == 200, granted.text
    allowed = client.get(path.format("adder"), headers=auth(esc_token))
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["caller"] == "ESC billing"
    assert client.get(path.format("primer"), headers=auth(esc_token)).status_code == 403
    # An ESC may not manage ESCs (it is no staff member).
    assert client.get("/api/v1/escs", headers=auth(esc_token)).status_code == 403


def test_esc_tokens_expire_and_are_revoked(client: TestClient, token: str) -> None:
    esc = client.post("/api/v1/escs", json={"name": "reports"}, headers=auth(token)).json()
    soon = client.post(
        "/api/v1/escs/reports/auth_token",
        json={"expiry_time": time.time() + 3600},
        headers=auth(token),
    ).json()
    forever = client.post(f"/api/v1/escs/{esc['id']}/auth_token", headers=auth(token)).json()
    data = client.get(f"/api/v1/escs/{esc['id']}/auth_data", headers=auth(token)).json()
    assert data["name"] == "reports"
    assert {t["id"] for t in data["tokens"]} == {soon["id"], forever["id"]}
    assert soon["token"] not in str(data)
    assert all(t["active"] for t in data["tokens"])
    assert next(t for t in data["tokens"] if t["id"] == forever["id"])["expiry_time"] is None

    past = client.post(
        f"/api/v1/escs/{esc['id']}/auth_token", json={"expiry_time": 1}, headers=auth(token)
    )
    assert past.status_code == 400

    who = client.get("/api/v1/grants/mine", headers=auth(forever["token"]))
    assert (who.status_code, who.json()) == (200, [])
    own = client.get("/api/v1/tokens", headers=auth(forever["token"])).json()
    assert {t["id"] for t in own} == {soon["id"], forever["id"]}
    more = client.post("/api/v1/tokens", headers=auth(soon["token"]))
    assert (more.status_code, "staff make its tokens" in more.json()["error"]) == (400, True)

    revoked = client.delete(
        f"/api/v1/escs/{esc['id']}/auth_token/{forever['id']}", headers=auth(token)
    )
    assert revoked.json()["revoked"] is True
    refused = client.get("/api/v1/grants/mine", headers=auth(forever["token"]))
    assert (refused.status_code, "revoked" in refused.json()["error"]) == (401, True)
    other = client.delete(f"/api/v1/escs/{esc['id']}/auth_token/nope", headers=auth(token))
    assert other.status_code == 404


def test_esc_administration_and_its_errors(
    client: TestClient, token: str, settings: Settings
) -> None:
    assert client.get("/api/v1/escs", headers=auth(token)).json() == []
    for name in ("", "has space", "-dash", "x" * 200, None):
        bad = client.post("/api/v1/escs", json={"name": name}, headers=auth(token))
        assert bad.status_code == 400, name
    esc = client.post("/api/v1/escs", json={"name": "etl"}, headers=auth(token)).json()
    again = client.post("/api/v1/escs", json={"name": "etl"}, headers=auth(token))
    assert again.status_code == 409
    assert [e["name"] for e in client.get("/api/v1/escs", headers=auth(token)).json()] == ["etl"]
    esc_token = client.post(f"/api/v1/escs/{esc['id']}/auth_token", headers=auth(token)).json()

    add_jobs(settings, ("adder", "0.0.1"))
    client.post(
        "/api/v1/grants",
        json={"subject_kind": "esc", "subject_name": "etl", "scope": "call_job"},
        headers=auth(token),
    )
    deleted = client.delete(f"/api/v1/escs/{esc['id']}", headers=auth(token))
    assert (deleted.status_code, deleted.json()) == (200, None)
    gone = client.get("/api/v1/grants/mine", headers=auth(esc_token["token"]))
    assert gone.status_code == 401
    assert client.get("/api/v1/grants?subject_kind=esc", headers=auth(token)).json() == []
    assert client.get(f"/api/v1/escs/{esc['id']}/auth_data", headers=auth(token)).status_code == 404
    assert client.delete(f"/api/v1/escs/{esc['id']}", headers=auth(token)).status_code == 404

    engine = connect(settings.database_url)
    with Session(engine) as session:
        kinds = [e.kind for e in session.exec(select(AuditEvent))]
    engine.dispose()
    assert kinds.count("token_created") == 1
    assert kinds.count("token_revoked") == 1
    assert kinds.count("permission_revoked") == 1


def test_the_esc_listing_carries_every_ones_tokens_on_request(
    client: TestClient, token: str, settings: Settings
) -> None:
    # "admin" is also the name of a user with tokens: a user's tokens are no ESC's.
    for name in ("reports", "billing", "admin", "idle"):
        client.post("/api/v1/escs", json={"name": name}, headers=auth(token))
    for name in ("reports", "reports", "billing", "admin"):
        client.post(f"/api/v1/escs/{name}/auth_token", headers=auth(token))
    first = client.get("/api/v1/escs/reports/auth_data", headers=auth(token)).json()["tokens"][-1]
    client.delete(f"/api/v1/escs/reports/auth_token/{first['id']}", headers=auth(token))

    plain = client.get("/api/v1/escs", headers=auth(token)).json()
    assert [esc["name"] for esc in plain] == ["admin", "billing", "idle", "reports"]
    assert all("tokens" not in esc for esc in plain)
    assert client.get("/api/v1/escs?tokens=false", headers=auth(token)).json() == plain

    engine = client.app.state.service.engine  # type: ignore[attr-defined]
    token_queries: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "FROM auth_token" in statement and "subject_kind" in statement.split("WHERE")[-1]:
            token_queries.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        with_tokens = client.get("/api/v1/escs", params={"tokens": "true"}, headers=auth(token))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert with_tokens.status_code == 200, with_tokens.text
    assert len(token_queries) == 1, token_queries
    for esc in with_tokens.json():
        alone = client.get(f"/api/v1/escs/{esc['id']}/auth_data", headers=auth(token)).json()
        assert esc == alone
    counts = {esc["name"]: len(esc["tokens"]) for esc in with_tokens.json()}
    assert counts == {"admin": 1, "billing": 1, "idle": 0, "reports": 2}
    reports = next(esc for esc in with_tokens.json() if esc["name"] == "reports")
    assert [t["active"] for t in reports["tokens"]] == [True, False]

    bad = client.get("/api/v1/escs", params={"tokens": "yes"}, headers=auth(token))
    assert bad.status_code == 400
    assert bad.json()["error"] == "query parameter 'tokens' must be true or false, not 'yes'"


def test_only_staff_manage_escs(client: TestClient, token: str) -> None:
    password = "a long enough pass phrase"
    client.post("/api/v1/users/register", json={"username": "j@example.com", "password": password})
    client.post("/api/v1/users/j@example.com/activate", headers=auth(token))
    jane = client.post(
        "/api/v1/users/login", json={"username": "j@example.com", "password": password}
    ).json()["token"]
    for method, path in [
        ("GET", "/api/v1/escs"),
        ("POST", "/api/v1/escs"),
        ("DELETE", "/api/v1/escs/x"),
        ("GET", "/api/v1/escs/x/auth_data"),
        ("POST", "/api/v1/escs/x/auth_token"),
        ("DELETE", "/api/v1/escs/x/auth_token/y"),
    ]:
        answer = client.request(method, path, json={"name": "x"}, headers=auth(jane))
        assert answer.status_code == 403, path
        assert client.request(method, path).status_code == 401
