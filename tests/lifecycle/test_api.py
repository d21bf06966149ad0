"""The Lifecycle API's wire rules: auth on every route, JSON errors, both mount points."""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from racetrack_core.settings import Settings
from racetrack_core.storage.database import connect
from tests.lifecycle.records import add_jobs

PRIMER = {
    "name": "primer",
    "owner_email": "sample@example.com",
    "jobtype": "python3:latest",
    "git": {"remote": "https://github.com/TheRacetrack/racetrack"},
    "jobtype_extra": {"entrypoint_path": "entrypoint.py", "entrypoint_class": "JobEntrypoint"},
}

PROTECTED = [
    ("GET", "/api/v1/job"),
    ("GET", "/api/v1/job_family"),
    ("GET", "/api/v1/job/primer/latest"),
    ("DELETE", "/api/v1/job/primer/0.0.1"),
    ("GET", "/api/v1/job/primer/latest/logs"),
    ("GET", "/api/v1/job/primer/latest/build-logs"),
    ("POST", "/api/v1/job/primer/0.0.1/move"),
    ("POST", "/api/v1/job/primer/0.0.1/redeploy"),
    ("POST", "/api/v1/deploy"),
    ("GET", "/api/v1/deploy"),
    ("GET", "/api/v1/deploy/abc"),
    ("GET", "/api/v1/deploy/abc/build-logs"),
    ("GET", "/api/v1/users/validate_user_auth"),
    ("GET", "/api/v1/plugin"),
    ("GET", "/api/v1/plugin/job_type/versions"),
    ("GET", "/api/v1/plugin/infrastructure_targets"),
    ("POST", "/api/v1/plugin/upload/hello-1.0.0-py3-none-any.whl"),
    ("DELETE", "/api/v1/plugin/hello"),
    ("DELETE", "/api/v1/plugin/hello/1.0.0"),
    ("GET", "/api/v1/auth/can-call-job/primer/latest/api/v1/perform"),
]


@pytest.mark.parametrize("prefix", ["", "/lifecycle"])
@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_every_protected_route_refuses_a_missing_or_unknown_token(
    shared_client: TestClient, prefix: str, method: str, path: str
) -> None:
    client = shared_client
    missing = client.request(method, prefix + path, json={})
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/json"
    assert missing.json() == {
        "error": "no header X-Racetrack-Auth: not logged in",
        "type": "Unauthenticated",
    }
    unknown = client.request(
        method, prefix + path, json={}, headers={"X-Racetrack-Auth": "rt_not-a-real-token"}
    )
    assert unknown.status_code == 401
    assert "unknown" in unknown.json()["error"]
    assert "rt_not-a-real-token" not in unknown.text


@pytest.mark.parametrize("prefix", ["", "/lifecycle"])
def test_info_is_open_and_describes_the_server(
    client: TestClient, settings: Settings, prefix: str
) -> None:
    answer = client.get(prefix + "/api/v1/info")
    assert answer.status_code == 200
    info = answer.json()
    assert info["service"] == "lifecycle"
    assert info["auth_required"] is True
    assert info["external_pub_url"] == settings.external_pub_url == "http://127.0.0.1:7105/pub"
    assert info["lifecycle_url"] == "http://127.0.0.1:7102/lifecycle"


def test_health_routes_answer_without_auth(client: TestClient) -> None:
    assert client.get("/live").json() == {"service": "lifecycle", "live": True}
    assert client.get("/lifecycle/ready").json() == {"service": "lifecycle", "ready": True}
    health = client.get("/health").json()
    assert health["database_connected"] is True
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "racetrack_lifecycle_start_time_seconds" in metrics.text


def test_login_gives_a_token_that_is_stored_only_as_a_digest(
    client: TestClient, settings: Settings, token: str
) -> None:
    assert token.startswith("rt_")
    who = client.get("/api/v1/users/validate_user_auth", headers={"X-Racetrack-Auth": token})
    assert who.json() == {"username": "admin", "token": token, "is_staff": True, "kind": "user"}
    engine = connect(settings.database_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM auth_token")).fetchall()
        users = connection.execute(text("SELECT password_hash FROM user_account")).fetchall()
    engine.dispose()
    dumped = json.dumps([list(map(str, row)) for row in rows])
    assert token not in dumped
    assert users[0][0].startswith("$argon2id$")


def test_login_sets_an_http_only_same_site_cookie(client: TestClient) -> None:
    answer = client.post(
        "/api/v1/users/login",
        json={"username": "admin", "password": "correct horse battery staple"},
    )
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("X-Racetrack-Auth=rt_")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(
    client: TestClient,
) -> None:
    for username in ("admin", "nobody@example.com"):
        answer = client.post(
            "/api/v1/users/login", json={"username": username, "password": "wrong password"}
        )
        assert answer.status_code == 401
        assert answer.json()["error"] == "incorrect username or password"


def test_a_legacy_header_is_accepted(client: TestClient, token: str) -> None:
    answer = client.get("/api/v1/job", headers={"X-Racetrack-User-Auth": token})
    assert answer.status_code == 200
    assert answer.json() == []


def test_unknown_routes_and_methods_answer_json(client: TestClient) -> None:
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["type"] == "NotFound"
    wrong = client.put("/api/v1/info")
    assert wrong.status_code == 405
    assert wrong.headers["content-type"] == "application/json"


def test_unknown_jobs_and_deployments_are_404(client: TestClient, token: str) -> None:
    auth = {"X-Racetrack-Auth": token}
    assert client.get("/api/v1/job/primer/latest", headers=auth).json() == {
        "error": "no job named primer",
        "type": "NotFound",
    }
    assert client.get("/api/v1/deploy/abc", headers=auth).status_code == 404
    assert client.delete("/api/v1/job/primer/0.0.1", headers=auth).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({}, 400, "field 'manifest' is required"),
        ({"manifest": PRIMER, "surprise": 1}, 400, "unknown field 'surprise'"),
        ({"manifest": {**PRIMER, "name": "Bad_Name"}}, 400, "name"),
        ({"manifest": {**PRIMER, "jobtype": "pyton3:latest"}}, 400, "python3"),
        ({"manifest": PRIMER, "git_credentials": "user:pw"}, 400, "git_credentials"),
        ({"manifest": PRIMER, "secret_vars": {"runtime_env": [1]}}, 400, "secret_vars.runtime_env"),
        ({"manifest": PRIMER, "build_context": 7}, 400, "build_context"),
        ({"manifest": PRIMER, "build_flags": "--no-cache"}, 400, "build_flags"),
        (
            {"manifest": {**PRIMER, "infrastructure_target": "moon"}},
            400,
            "unknown infrastructure target 'moon'",
        ),
    ],
)
def test_bad_deploy_requests_are_explained(
    client: TestClient, token: str, body: dict[str, object], status: int, message: str
) -> None:
    answer = client.post("/api/v1/deploy", json=body, headers={"X-Racetrack-Auth": token})
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]
    assert client.get("/api/v1/deploy", headers={"X-Racetrack-Auth": token}).json() == []


def test_a_body_that_is_not_json_is_a_400(client: TestClient, token: str) -> None:
    answer = client.post("/api/v1/deploy", content=b"{nope", headers={"X-Racetrack-Auth": token})
    assert answer.status_code == 400
    assert "not valid JSON" in answer.json()["error"]


def test_an_oversized_build_context_is_refused_before_anything_is_recorded(
    settings: Settings, tmp_path: object
) -> None:
    from racetrack_core import PluginManager
    from racetrack_core.lifecycle import create_app
    from racetrack_core.lifecycle.accounts import ensure_admin, issue_token
    from racetrack_core.storage.database import migrate
    from racetrack_core.storage.models import SubjectKind

    small = settings.replace(build_context_max_bytes=1024)
    engine = connect(small.database_url)
    migrate(engine)
    ensure_admin(engine, small.home, "a password for the test")
    token = issue_token(engine, SubjectKind.USER, "admin")
    context = base64.b64encode(b"x" * 4096).decode()
    with TestClient(create_app(small, PluginManager(), engine)) as client:
        answer = client.post(
            "/api/v1/deploy",
            json={"manifest": PRIMER, "build_context": context},
            headers={"X-Racetrack-Auth": token},
        )
        assert answer.status_code == 413
        assert "limit of 1 KiB" in answer.json()["error"]
        assert client.get("/api/v1/deploy", headers={"X-Racetrack-Auth": token}).json() == []
    engine.dispose()


def test_openapi_lists_every_api_route_with_its_auth(client: TestClient) -> None:
    document = client.get("/lifecycle/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert "/api/v1/deploy" in document["paths"]
    assert document["paths"]["/api/v1/info"]["get"].get("security") is None
    deploy = document["paths"]["/api/v1/deploy"]["post"]
    assert deploy["security"] == [{"RacetrackAuth": []}]
    assert deploy["summary"].startswith("Start deploying")
    page = client.get("/lifecycle/docs")
    assert "swagger-ui-bundle.js" in page.text
    assert client.get("/lifecycle/swagger-ui/swagger-ui-bundle.js").status_code == 200


def test_openapi_describes_parameters_errors_and_declared_bodies(client: TestClient) -> None:
    paths = client.get("/lifecycle/openapi.json").json()["paths"]
    job = paths["/api/v1/job/{name}/{version}"]["get"]
    assert [p["name"] for p in job["parameters"]] == ["name", "version"]
    assert job["responses"]["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    document = client.get("/lifecycle/openapi.json").json()
    components = document["components"]["schemas"]
    login = paths["/api/v1/users/login"]["post"]
    body = login["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/Credentials"}
    assert components["Credentials"]["required"] == ["username", "password"]
    answer = login["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/Session"}
    assert components["Session"]["required"] == ["username", "token", "is_staff"]


def test_a_declared_body_is_also_what_the_route_checks(client: TestClient) -> None:
    wrong = client.post("/api/v1/users/login", json={"username": 5, "password": "x"})
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "field 'username' must be a string"
    missing = client.post("/api/v1/users/register", json={"username": "a@example.com"})
    assert missing.status_code == 400
    assert missing.json()["error"] == "field 'password' is required"


def test_only_staff_change_plugins(client: TestClient, settings: Settings) -> None:
    from racetrack_core.lifecycle.accounts import issue_token
    from racetrack_core.security import hash_password
    from racetrack_core.storage.models import SubjectKind, User

    engine = connect(settings.database_url)
    from sqlmodel import Session

    with Session(engine) as session:
        session.add(
            User(username="dev@example.com", password_hash=hash_password("x" * 12), is_active=True)
        )
        session.commit()
    token = issue_token(engine, SubjectKind.USER, "dev@example.com")
    engine.dispose()
    auth = {"X-Racetrack-Auth": token}
    assert client.get("/api/v1/plugin", headers=auth).status_code == 200
    upload = client.post(
        "/api/v1/plugin/upload/hello-1.0.0-py3-none-any.whl", content=b"PK", headers=auth
    )
    assert upload.status_code == 403
    assert upload.json() == {
        "error": "User dev@example.com is not a staff member; ask an administrator",
        "type": "Forbidden",
    }
    assert client.delete("/api/v1/plugin/hello", headers=auth).status_code == 403


def test_the_internal_token_acts_for_the_services(tmp_path: object, settings: Settings) -> None:
    from racetrack_core import PluginManager
    from racetrack_core.lifecycle import create_app
    from racetrack_core.storage.database import migrate

    internal = settings.replace(internal_token="rt_internal-token-for-the-test-0123456789")
    engine = connect(internal.database_url)
    migrate(engine)
    with TestClient(create_app(internal, PluginManager(), engine)) as client:
        who = client.get(
            "/api/v1/users/validate_user_auth",
            headers={"X-Racetrack-Auth": "rt_internal-token-for-the-test-0123456789"},
        )
        assert who.json()["username"] == "racetrack"
        assert who.json()["is_staff"] is True
        assert (
            client.get(
                "/api/v1/job", headers={"X-Racetrack-Auth": "rt_internal-token-for-the-test"}
            ).status_code
            == 401
        )
    engine.dispose()


def test_a_family_token_is_revoked_with_the_familys_last_version(
    client: TestClient, settings: Settings, token: str
) -> None:
    from sqlmodel import Session

    from racetrack_core.lifecycle.accounts import issue_token
    from racetrack_core.storage.models import Job, JobFamily, SubjectKind

    engine = connect(settings.database_url)
    with Session(engine) as session:
        family = JobFamily(name="primer")
        session.add(family)
        session.flush()
        for version in ("0.0.1", "0.0.2"):
            session.add(
                Job(
                    family_id=family.id,
                    name="primer",
                    version=version,
                    manifest_yaml="name: primer\n",
                    job_type="python3:1.0.0",
                    infrastructure_target="local",
                )
            )
        session.commit()
    family_token = issue_token(engine, SubjectKind.JOB_FAMILY, "primer")
    engine.dispose()
    as_family = {"X-Racetrack-Auth": family_token}
    admin = {"X-Racetrack-Auth": token}

    assert client.delete("/api/v1/job/primer/0.0.1", headers=admin).status_code == 200
    assert client.get("/api/v1/grants/mine", headers=as_family).status_code == 200
    assert client.delete("/api/v1/job/primer/0.0.2", headers=admin).status_code == 200
    refused = client.get("/api/v1/grants/mine", headers=as_family)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["error"]


def test_can_call_job_says_whether_the_jobs_docs_is_racetracks_swagger_page(
    client: TestClient, token: str, settings: Settings
) -> None:
    """From the job's type (``JobType.docs_page``): python3's wrapper serves it; a job type
    that is not installed (or does not declare it) does not, and Pub then sandboxes /docs."""
    add_jobs(settings, ("primer", "0.0.1"))
    add_jobs(settings, ("foreign", "0.0.1"), job_type="made-up:1.0.0")
    answers = {
        name: client.get(
            f"/api/v1/auth/can-call-job/{name}/0.0.1/docs", headers={"X-Racetrack-Auth": token}
        )
        for name in ("primer", "foreign")
    }
    assert {name: answer.status_code for name, answer in answers.items()} == {
        "primer": 200,
        "foreign": 200,
    }
    assert answers["primer"].json()["docs_page"] is True
    assert answers["foreign"].json()["docs_page"] is False
