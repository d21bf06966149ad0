"""A subject's own tokens: list, create (with an expiry), revoke, regenerate; expired and
revoked tokens are refused with the reason."""

from __future__ import annotations

import time

from sqlmodel import Session, select
from starlette.testclient import TestClient

from racetrack_core.settings import Settings
from racetrack_core.storage.database import connect
from racetrack_core.storage.models import AuditEvent, AuthToken


def auth(token: str) -> dict[str, str]:
    return {"X-Racetrack-Auth": token}


def test_create_list_and_revoke_tokens(client: TestClient, token: str) -> None:
    created = client.post("/api/v1/tokens", json={"expires_in_days": 7}, headers=auth(token))
    assert created.status_code == 200, created.text
    record = created.json()
    assert record["token"].startswith("rt_")
    assert record["hint"] == "…" + record["token"][-4:]
    assert time.time() + 6.9 * 86400 < record["expiry_time"] < time.time() + 7.1 * 86400
    assert record["active"] is True

    no_body = client.post("/api/v1/tokens", headers=auth(token))
    assert no_body.status_code == 200
    assert no_body.json()["expiry_time"] is None

    listed = client.get("/api/v1/tokens", headers=auth(token)).json()
    assert len(listed) == 3  # the login's, and the two just made
    assert record["id"] in {t["id"] for t in listed}
    assert all("token" not in t for t in listed)
    assert record["token"] not in str(listed)
    login_token = next(t for t in listed if t["hint"] == "…" + token[-4:])
    assert login_token["last_use_time"] is not None

    new = record["token"]
    assert client.get("/api/v1/job", headers=auth(new)).status_code == 200
    revoked = client.delete(f"/api/v1/tokens/{record['id']}", headers=auth(token))
    assert revoked.status_code == 200
    assert revoked.json()["revoked"] is True
    refused = client.get("/api/v1/job", headers=auth(new))
    assert refused.status_code == 401
    assert "revoked" in refused.json()["error"]
    assert new not in refused.text

    unknown = client.delete("/api/v1/tokens/nope", headers=auth(token))
    assert unknown.status_code == 404


def test_bad_expiry_is_refused(shared_client: TestClient) -> None:
    admin = shared_client.post(
        "/api/v1/users/login",
        json={"username": "admin", "password": "correct horse battery staple"},
    ).json()["token"]
    for days in (0, -1, "7", True, 100_000):
        answer = shared_client.post(
            "/api/v1/tokens", json={"expires_in_days": days}, headers=auth(admin)
        )
        assert answer.status_code == 400, days
        assert "expires_in_days" in answer.json()["error"]


def test_an_expired_token_is_refused_with_the_reason(
    client: TestClient, token: str, settings: Settings
) -> None:
    created = client.post("/api/v1/tokens", json={"expires_in_days": 1}, headers=auth(token))
    engine = connect(settings.database_url)
    with Session(engine) as session:
        row = session.get(AuthToken, created.json()["id"])
        assert row is not None
        row.expires_at = time.time() - 1
        session.add(row)
        session.commit()
    engine.dispose()
    refused = client.get("/api/v1/job", headers=auth(created.json()["token"]))
    assert refused.status_code == 401
    assert "expired" in refused.json()["error"]
    listed = client.get("/api/v1/tokens", headers=auth(token)).json()
    assert next(t for t in listed if t["id"] == created.json()["id"])["active"] is False


def test_one_cannot_revoke_a_token_of_someone_else(client: TestClient, token: str) -> None:
    client.post(
        "/api/v1/users/register",
        json={"username": "jane@example.com", "password": "a long enough pass phrase"},
    )
    client.post("/api/v1/users/jane@example.com/activate", headers=auth(token))
    jane = client.post(
        "/api/v1/users/login",
        json={"username": "jane@example.com", "password": "a long enough pass phrase"},
    ).json()["token"]
    admin_tokens = client.get("/api/v1/tokens", headers=auth(token)).json()
    refused = client.delete(f"/api/v1/tokens/{admin_tokens[0]['id']}", headers=auth(jane))
    assert refused.status_code == 404
    assert client.get("/api/v1/job", headers=auth(token)).status_code == 200
    assert len(client.get("/api/v1/tokens", headers=auth(jane)).json()) == 1


def test_regenerate_replaces_the_current_token(
    client: TestClient, token: str, settings: Settings
) -> None:
    answer = client.post("/api/v1/auth/token/user/regenerate", headers=auth(token))
    assert answer.status_code == 200
    new = answer.json()["new_token"]
    assert new != token
    assert "X-Racetrack-Auth=" in answer.headers["set-cookie"]
    assert "HttpOnly" in answer.headers["set-cookie"]
    client.cookies.clear()
    old = client.get("/api/v1/job", headers=auth(token))
    assert (old.status_code, "revoked" in old.json()["error"]) == (401, True)
    assert client.get("/api/v1/job", headers=auth(new)).status_code == 200

    engine = connect(settings.database_url)
    with Session(engine) as session:
        kinds = [e.kind for e in session.exec(select(AuditEvent))]
    engine.dispose()
    assert kinds.count("token_created") == 1
    assert kinds.count("token_revoked") == 1


def test_token_routes_need_a_token(shared_client: TestClient) -> None:
    for method, path in [
        ("GET", "/api/v1/tokens"),
        ("POST", "/api/v1/tokens"),
        ("DELETE", "/api/v1/tokens/abc"),
        ("POST", "/api/v1/auth/token/user/regenerate"),
    ]:
        answer = shared_client.request(method, path)
        assert answer.status_code == 401, path
        assert answer.json()["type"] == "Unauthenticated"
