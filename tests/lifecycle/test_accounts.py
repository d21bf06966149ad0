"""Users: registration and its password rules, activation, login (and its rate limit),
password change, and the staff's user administration."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient

from racetrack_core import PluginManager
from racetrack_core.lifecycle import create_app
from racetrack_core.lifecycle.accounts import common_passwords
from racetrack_core.lifecycle.login_throttle import LoginThrottle, TooManyAttempts
from racetrack_core.settings import Settings
from racetrack_core.storage.database import connect, migrate
from racetrack_core.storage.models import AuditEvent, Permission, User

PASSWORD = "a long enough pass phrase"
ADMIN_PASSWORD = "correct horse battery staple"


def register(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, object]:
    answer = client.post(
        "/api/v1/users/register", json={"username": username, "password": password}
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    answer = client.post("/api/v1/users/login", json={"username": username, "password": password})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["token"]
    return token


def auth(token: str) -> dict[str, str]:
    return {"X-Racetrack-Auth": token}


def active_user(client: TestClient, admin: str, username: str) -> str:
    """Register and activate ``username``; return a token of theirs."""
    register(client, username)
    answer = client.post(f"/api/v1/users/{username}/activate", headers=auth(admin))
    assert answer.status_code == 200, answer.text
    return login(client, username)


def test_a_registered_user_awaits_activation_then_logs_in(
    client: TestClient, token: str, settings: Settings
) -> None:
    user = register(client, "jane@example.com")
    assert user["username"] == "jane@example.com"
    assert user["is_active"] is False
    assert "password" not in str(user)
    assert PASSWORD not in str(user)

    refused = client.post(
        "/api/v1/users/login", json={"username": "jane@example.com", "password": PASSWORD}
    )
    assert refused.status_code == 401
    assert "awaits activation" in refused.json()["error"]

    activated = client.post("/api/v1/users/jane@example.com/activate", headers=auth(token))
    assert activated.json()["is_active"] is True
    jane = login(client, "jane@example.com")
    who = client.get("/api/v1/users/validate_user_auth", headers=auth(jane)).json()
    assert who == {"username": "jane@example.com", "token": jane, "is_staff": False, "kind": "user"}

    engine = connect(settings.database_url)
    with Session(engine) as session:
        scopes = {
            p.scope
            for p in session.exec(
                select(Permission).where(Permission.subject_name == "jane@example.com")
            )
        }
        kinds = [e.kind for e in session.exec(select(AuditEvent))]
        stored = session.exec(select(User).where(User.username == "jane@example.com")).one()
    engine.dispose()
    assert scopes == {"read_job", "call_job", "deploy_new_family"}
    assert kinds.count("user_registered") == 1
    assert kinds.count("user_activated") == 1
    assert stored.password_hash.startswith("$argon2id$")

    again = client.post(
        "/api/v1/users/register", json={"username": "jane@example.com", "password": PASSWORD}
    )
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("username", "password", "rule"),
    [
        ("not-an-email", PASSWORD, "not an e-mail address"),
        ("joe@example.com", "short1!", "too short"),
        ("joe@example.com", "1234567890123", "all digits"),
        ("joe@example.com", "Password1", "most common"),
        ("joe@example.com", "qwertyuiop", "most common"),
        ("joe@example.com", "JOE@example.com", "is the username"),
        ("joe@example.com", None, "'password'"),
    ],
)
def test_registration_refuses_a_bad_name_or_password_naming_the_rule(
    shared_client: TestClient, username: str, password: str | None, rule: str
) -> None:
    answer = shared_client.post(
        "/api/v1/users/register", json={"username": username, "password": password}
    )
    assert answer.status_code == 400
    assert answer.json()["type"] == "BadRequest"
    assert rule in answer.json()["error"]
    if password:
        assert password not in answer.text


def test_the_common_password_list_is_shipped() -> None:
    passwords = common_passwords()
    assert len(passwords) > 300
    assert {"password", "iloveyou", "qwerty123"} <= passwords


def test_login_failures_are_rate_limited_per_account(client: TestClient) -> None:
    body = {"username": "admin", "password": "not the password"}
    for _ in range(5):
        assert client.post("/api/v1/users/login", json=body).status_code == 401
    limited = client.post("/api/v1/users/login", json=body)
    assert limited.status_code == 429
    assert limited.json()["type"] == "TooManyRequests"
    assert "too many failed logins for account admin" in limited.json()["error"]
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # Even the right password waits: the check comes before the password is looked at.
    right = client.post(
        "/api/v1/users/login", json={"username": "admin", "password": ADMIN_PASSWORD}
    )
    assert right.status_code == 429
    # Another account from another address is not held back.
    other = client.post(
        "/api/v1/users/login", json={"username": "nobody@example.com", "password": "x" * 9}
    )
    assert other.status_code == 401


def test_the_throttle_counts_per_address_and_forgets_after_the_window(db: Engine) -> None:
    now = [1000.0]
    throttle = LoginThrottle(db, account_limit=3, address_limit=4, window=60, clock=lambda: now[0])
    for user in ("a@x.io", "b@x.io", "c@x.io", "d@x.io"):
        throttle.check(user, "10.0.0.1")
        throttle.failed(user, "10.0.0.1")
    with pytest.raises(TooManyAttempts) as refused:
        throttle.check("e@x.io", "10.0.0.1")
    assert "address 10.0.0.1" in str(refused.value)
    assert refused.value.retry_after == 60
    throttle.check("e@x.io", "10.0.0.2")
    now[0] += 30
    with pytest.raises(TooManyAttempts) as later:
        throttle.check("e@x.io", "10.0.0.1")
    assert later.value.retry_after == 30
    now[0] += 31
    throttle.check("e@x.io", "10.0.0.1")


def test_a_success_clears_the_account_count(db: Engine) -> None:
    throttle = LoginThrottle(db, account_limit=2, address_limit=100)
    throttle.failed("a@x.io", "1")
    throttle.succeeded("a@x.io")
    throttle.failed("a@x.io", "1")
    throttle.check("a@x.io", "1")


def test_change_password(client: TestClient, token: str) -> None:
    jane = active_user(client, token, "jane@example.com")
    new = "another long pass phrase"
    wrong = client.put(
        "/api/v1/users/change_password",
        json={"old_password": "wrong password", "new_password": new},
        headers=auth(jane),
    )
    assert wrong.status_code == 401
    assert "old password is not correct" in wrong.json()["error"]
    weak = client.put(
        "/api/v1/users/change_password",
        json={"old_password": PASSWORD, "new_password": "12345678901"},
        headers=auth(jane),
    )
    assert (weak.status_code, "all digits" in weak.json()["error"]) == (400, True)
    same = client.put(
        "/api/v1/users/change_password",
        json={"old_password": PASSWORD, "new_password": PASSWORD},
        headers=auth(jane),
    )
    assert same.status_code == 400
    done = client.put(
        "/api/v1/users/change_password",
        json={"old_password": PASSWORD, "new_password": new},
        headers=auth(jane),
    )
    assert (done.status_code, done.json()) == (200, None)
    old = client.post(
        "/api/v1/users/login", json={"username": "jane@example.com", "password": PASSWORD}
    )
    assert old.status_code == 401
    login(client, "jane@example.com", new)
    missing = client.put("/api/v1/users/change_password", json={"old_password": PASSWORD})
    assert missing.status_code == 401


def test_staff_list_activate_deactivate_and_make_staff(client: TestClient, token: str) -> None:
    jane = active_user(client, token, "jane@example.com")
    register(client, "joe@example.com")

    users = client.get("/api/v1/users", headers=auth(token)).json()
    assert [u["username"] for u in users] == ["admin", "jane@example.com", "joe@example.com"]
    assert all("password" not in key for user in users for key in user)

    for method, path, body in [
        ("GET", "/api/v1/users", None),
        ("POST", "/api/v1/users/joe@example.com/activate", None),
        ("POST", "/api/v1/users/admin/deactivate", None),
        ("POST", "/api/v1/users/jane@example.com/staff", {"is_staff": True}),
    ]:
        refused = client.request(method, path, json=body, headers=auth(jane))
        assert refused.status_code == 403, path
        assert "not a staff member" in refused.json()["error"]

    unknown = client.post("/api/v1/users/nobody@example.com/activate", headers=auth(token))
    assert unknown.status_code == 404
    myself = client.post("/api/v1/users/admin/deactivate", headers=auth(token))
    assert (myself.status_code, "your own account" in myself.json()["error"]) == (400, True)
    bad = client.post("/api/v1/users/jane@example.com/staff", json={}, headers=auth(token))
    assert bad.status_code == 400

    staff = client.post(
        "/api/v1/users/jane@example.com/staff", json={"is_staff": True}, headers=auth(token)
    )
    assert staff.json()["is_staff"] is True
    assert client.get("/api/v1/users", headers=auth(jane)).status_code == 200

    gone = client.post("/api/v1/users/jane@example.com/deactivate", headers=auth(token))
    assert gone.json()["is_active"] is False
    stopped = client.get("/api/v1/job", headers=auth(jane))
    assert stopped.status_code == 401
    assert "awaits activation" in stopped.json()["error"]


def test_logout_clears_the_cookie(client: TestClient) -> None:
    answer = client.get("/api/v1/users/logout")
    assert answer.status_code == 200
    assert answer.json() is None
    assert 'X-Racetrack-Auth=""' in answer.headers["set-cookie"]


def test_a_forwarding_service_names_the_address_only_with_the_service_token(
    tmp_path: Path,
) -> None:
    settings = Settings(home=tmp_path / "home", internal_token="rt_" + "s" * 43)
    engine = connect(settings.database_url)
    migrate(engine)
    with TestClient(create_app(settings, PluginManager(), engine)) as client:

        def fail(number: int, address: str, vouched: bool) -> int:
            headers = {"X-Racetrack-Client-Address": address}
            if vouched:
                headers["X-Racetrack-Service-Token"] = settings.internal_token or ""
            body = {"username": f"u{number}@example.com", "password": "not-the-password"}
            answer = client.post("/api/v1/users/login", json=body, headers=headers)
            return int(answer.status_code)

        # Twenty failures from one named address hold that address back, and only that one.
        assert {fail(n, "203.0.113.5", vouched=True) for n in range(20)} == {401}
        assert fail(20, "203.0.113.5", vouched=True) == 429
        assert fail(21, "203.0.113.6", vouched=True) == 401
        # Without the service token the header is ignored: failures count against the peer,
        # whatever address they claim.
        assert {fail(n, f"198.51.100.{n}", vouched=False) for n in range(30, 50)} == {401}
        assert fail(50, "198.51.100.200", vouched=False) == 429
    engine.dispose()
