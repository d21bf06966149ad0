"""Every Lifecycle route against every kind of caller.

The callers: no token, a malformed token, an unknown token, a revoked token, an expired token,
an inactive user, an active user without the route's scope, and one with it. Each route is
classified below by what it needs; a route of the app that is missing from the table fails
the test, so a new route cannot ship unclassified. The expectations: 401 for the first six
kinds (except on open routes), 403 for the caller without the scope (or, on routes any caller
may use, an answer that shows none of the job's data), and never 401, 403 or a 5xx for the
caller with it.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from starlette.routing import Route
from starlette.testclient import TestClient

from racetrack_core import PluginManager
from racetrack_core.lifecycle import create_app
from racetrack_core.lifecycle.accounts import ensure_admin, issue_token
from racetrack_core.lifecycle.permissions import grant
from racetrack_core.security import hash_password, token_digest
from racetrack_core.settings import Settings
from racetrack_core.storage.database import connect, migrate
from racetrack_core.storage.models import (
    AuthToken,
    Deployment,
    DeploymentStatus,
    ExternalConsumer,
    Job,
    JobFamily,
    JobStatus,
    Permission,
    PublicEndpointRequest,
    Scope,
    SubjectKind,
    User,
)

INTERNAL_TOKEN = "rt_internal-token-of-the-auth-matrix-0123456789"
PASSWORD = "a long enough password 42"
MANIFEST = (
    "name: primer\nowner_email: sample@example.com\njobtype: python3:latest\nversion: 0.0.1\n"
    "git:\n  remote: https://example.invalid/jobs.git\n"
    "jobtype_extra:\n  entrypoint_path: entrypoint.py\n"
)

OPEN = "open"  # anyone, no token needed
ANY = "any"  # any valid token; answers only what the caller may see
STAFF = "staff"
INTERNAL = "internal"  # the services' internal token only


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    needs: str | Scope
    body: Any = None
    #: For ANY routes: text that must not appear in the answer of a caller without read_job.
    hidden: str | None = None


def cases(ids: dict[str, str]) -> list[Case]:
    job = "/api/v1/job/primer/0.0.1"
    deploy_body = {"manifest": _manifest()}
    return [
        Case("GET", "/api/v1/info", OPEN),
        Case("GET", "/live", OPEN),
        Case("GET", "/ready", OPEN),
        Case("GET", "/health", OPEN),
        Case("GET", "/metrics", OPEN),
        Case("GET", "/openapi.json", OPEN),
        Case("GET", "/docs", OPEN),
        Case("GET", "/", OPEN),
        Case("POST", "/api/v1/users/login", OPEN, {"username": "x@example.com", "password": "y"}),
        Case("GET", "/api/v1/users/logout", OPEN),
        Case("POST", "/api/v1/users/logout", OPEN),
        Case("POST", "/api/v1/users/register", OPEN, {"username": "bad", "password": "short"}),
        Case("POST", "/api/v1/deploy", Scope.DEPLOY_JOB, deploy_body),
        Case("GET", "/api/v1/deploy", ANY, hidden="primer"),
        Case("GET", f"/api/v1/deploy/{ids['deployment']}", Scope.READ_JOB),
        Case("GET", f"/api/v1/deploy/{ids['deployment']}/build-logs", Scope.READ_JOB),
        Case("GET", "/api/v1/job", ANY, hidden="primer"),
        Case("GET", "/api/v1/job_family", ANY, hidden="primer"),
        Case("GET", "/api/v1/job_family/jobs", ANY, hidden="primer"),
        Case("GET", job, Scope.READ_JOB),
        Case("DELETE", job, Scope.DELETE_JOB),
        Case("GET", f"{job}/logs", Scope.READ_JOB),
        Case("GET", f"{job}/logs/stream", Scope.READ_JOB),
        Case("GET", f"{job}/build-logs", Scope.READ_JOB),
        Case("POST", f"{job}/move", Scope.DEPLOY_JOB, {"infrastructure_target": "local"}),
        Case("POST", f"{job}/redeploy", Scope.DEPLOY_JOB),
        Case("GET", f"{job}/public-endpoints", Scope.READ_JOB),
        Case("GET", "/api/v1/auth/can-call-job/primer/0.0.1/api/v1/perform", Scope.CALL_JOB),
        Case("GET", "/api/v1/plugin", ANY),
        Case("GET", "/api/v1/plugin/job_type/versions", ANY),
        Case("GET", "/api/v1/plugin/infrastructure_targets", ANY),
        Case("POST", "/api/v1/plugin/upload/notes.txt", STAFF, b"not a wheel"),
        Case("POST", "/api/v1/plugin/install", STAFF, {"source": "/not/a/source"}),
        Case("DELETE", "/api/v1/plugin/no-such-plugin", STAFF),
        Case("DELETE", "/api/v1/plugin/no-such-plugin/1.0.0", STAFF),
        Case("GET", "/api/v1/users/validate_user_auth", ANY),
        Case("PUT", "/api/v1/users/change_password", ANY, {"old_password": "x"}),
        Case("GET", "/api/v1/users", STAFF),
        Case("POST", "/api/v1/users/idle@example.com/activate", STAFF),
        Case("POST", "/api/v1/users/idle@example.com/deactivate", STAFF),
        Case("POST", "/api/v1/users/idle@example.com/staff", STAFF, {"is_staff": False}),
        Case("GET", "/api/v1/tokens", ANY),
        Case("POST", "/api/v1/tokens", ANY, {}),
        Case("DELETE", "/api/v1/tokens/no-such-token", ANY),
        Case("POST", "/api/v1/auth/token/user/regenerate", ANY),
        Case("GET", "/api/v1/escs", STAFF),
        Case("POST", "/api/v1/escs", STAFF, {"name": "robot"}),
        Case("DELETE", "/api/v1/escs/no-such-esc", STAFF),
        Case("GET", f"/api/v1/escs/{ids['esc']}/auth_data", STAFF),
        Case("POST", f"/api/v1/escs/{ids['esc']}/auth_token", STAFF, {}),
        Case("DELETE", f"/api/v1/escs/{ids['esc']}/auth_token/no-such-token", STAFF),
        Case("GET", "/api/v1/grants", STAFF),
        Case("POST", "/api/v1/grants", STAFF, {"subject_kind": "user"}),
        Case("GET", "/api/v1/grants/mine", ANY),
        Case("DELETE", "/api/v1/grants/no-such-grant", STAFF),
        Case("POST", f"/api/v1/auth/allow/esc/{ids['esc']}/job/primer/scope/call_job", STAFF),
        Case("POST", "/api/v1/auth/allow/job_family/primer/job/primer/scope/call_job", STAFF),
        Case("GET", "/api/v1/audit/activity", ANY, hidden="primer"),
        Case("GET", "/api/v1/public-endpoints", STAFF),
        Case("POST", f"/api/v1/public-endpoints/{ids['public']}/approve", STAFF),
        Case("DELETE", f"/api/v1/public-endpoints/{ids['public']}/approve", STAFF),
        Case("POST", "/api/v1/async/task", INTERNAL, {}),
        Case("GET", "/api/v1/async/task", INTERNAL),
        Case("DELETE", "/api/v1/async/task", INTERNAL),
        Case("GET", "/api/v1/async/task/no-such-task", INTERNAL),
        Case("PATCH", "/api/v1/async/task/no-such-task", INTERNAL, {}),
        Case("POST", "/api/v1/job/call-times", INTERNAL, {"calls": []}),
    ]


@functools.cache
def password_hash() -> str:
    return hash_password(PASSWORD)


def _manifest() -> dict[str, Any]:
    from ruamel.yaml import YAML

    data: dict[str, Any] = YAML(typ="safe").load(MANIFEST)
    return data


@dataclass
class World:
    """One Lifecycle app and the subjects and rows the matrix needs, restored between routes."""

    client: TestClient
    engine: Engine
    ids: dict[str, str] = field(default_factory=dict)

    def reset(self) -> None:
        with Session(self.engine) as session:
            for username, active in (
                ("holder@example.com", True),
                ("reader@example.com", True),
                ("idle@example.com", False),
            ):
                user = session.exec(select(User).where(User.username == username)).first()
                if user is None:
                    user = User(username=username, password_hash=password_hash())
                user.is_active, user.is_staff = active, False
                user.password_hash = password_hash()
                session.add(user)
            for permission in session.exec(select(Permission)):
                session.delete(permission)
            family = session.exec(select(JobFamily).where(JobFamily.name == "primer")).first()
            if family is None:
                family = JobFamily(name="primer")
                session.add(family)
                session.flush()
            if session.exec(select(Job).where(Job.name == "primer")).first() is None:
                session.add(
                    Job(
                        family_id=family.id,
                        name="primer",
                        version="0.0.1",
                        status=JobStatus.RUNNING,
                        manifest_yaml=MANIFEST,
                        job_type="python3:1.0.0",
                        infrastructure_target="local",
                        internal_name="http://127.0.0.1:9",
                        deployed_by="admin",
                    )
                )
                session.flush()
            job = session.exec(select(Job).where(Job.name == "primer")).one()
            deployment = session.exec(select(Deployment)).first()
            if deployment is None:
                deployment = Deployment(
                    job_name="primer",
                    job_version="0.0.1",
                    status=DeploymentStatus.DONE,
                    manifest_yaml=MANIFEST,
                    deployed_by="admin",
                    build_log="primer's build log\n",
                    job_id=job.id,
                )
                session.add(deployment)
            esc = session.exec(select(ExternalConsumer)).first() or ExternalConsumer(name="robot")
            session.add(esc)
            public = session.exec(select(PublicEndpointRequest)).first()
            if public is None:
                public = PublicEndpointRequest(
                    job_name="primer", job_version="0.0.1", endpoint="/api/v1/perform"
                )
                session.add(public)
            session.commit()
            self.ids = {"deployment": deployment.id, "esc": esc.id, "public": public.id}

    def token(self, username: str, *, revoked: bool = False, expired: bool = False) -> str:
        token = issue_token(self.engine, SubjectKind.USER, username)
        if revoked or expired:
            with Session(self.engine) as session:
                row = session.exec(
                    select(AuthToken).where(AuthToken.token_digest == token_digest(token))
                ).one()
                if revoked:
                    row.revoked_at = time.time() - 1
                if expired:
                    row.expires_at = time.time() - 1
                session.add(row)
                session.commit()
        return token

    def grant_holder(self, needs: str | Scope) -> None:
        if not isinstance(needs, Scope):
            return
        with Session(self.engine) as session:
            grant(session, SubjectKind.USER, "holder@example.com", needs, family="primer")
            session.commit()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home: Path = tmp_path_factory.mktemp("matrix") / "home"
    settings = Settings(home=home, internal_token=INTERNAL_TOKEN)
    engine = connect(settings.database_url)
    migrate(engine)
    ensure_admin(engine, home, PASSWORD)
    with TestClient(create_app(settings, PluginManager(), engine)) as client:
        made = World(client, engine)
        made.reset()
        yield made
    engine.dispose()


def test_the_table_classifies_every_route(world: World) -> None:
    listed = [(case.method, case.path) for case in cases(world.ids)]
    routes = {
        (method, route.path)
        for route in world.client.app.routes  # type: ignore[attr-defined]
        if isinstance(route, Route)
        for method in (route.methods or set()) - {"HEAD"}
    }
    missing = {(method, path) for method, path in routes if not _covered(method, path, listed)}
    assert missing == set(), "routes missing from the auth matrix"
    assert len(listed) == ROUTES, "set ROUTES to the number of cases, so each one runs"


def _covered(method: str, template: str, listed: list[tuple[str, str]]) -> bool:
    """Whether a listed case calls this route (template placeholders match any segment)."""
    parts = re.split(r"(\{[^}]+\})", template)
    pattern = "".join(
        (".+" if part.endswith(":path}") else "[^/]+") if part.startswith("{") else re.escape(part)
        for part in parts
    )
    return any(m == method and re.fullmatch(pattern, path) for m, path in listed)


CALLERS: list[tuple[str, Callable[[World], str | None]]] = [
    ("no token", lambda w: None),
    ("malformed token", lambda w: "this is not a token !"),
    ("unknown token", lambda w: "rt_" + "x" * 43),
    ("revoked token", lambda w: w.token("holder@example.com", revoked=True)),
    ("expired token", lambda w: w.token("holder@example.com", expired=True)),
    ("inactive user", lambda w: w.token("idle@example.com")),
]


ROUTES = 67


@pytest.mark.parametrize("index", range(ROUTES))
def test_route(world: World, index: int) -> None:
    table = cases(world.ids)
    if index >= len(table):
        pytest.fail(f"the matrix lists {len(table)} routes; set ROUTES to that")
    world.reset()
    case = cases(world.ids)[index]

    def call(token: str | None) -> Any:
        headers = {"X-Racetrack-Auth": token} if token is not None else {}
        if isinstance(case.body, bytes):
            return world.client.request(case.method, case.path, content=case.body, headers=headers)
        return world.client.request(case.method, case.path, json=case.body, headers=headers)

    for label, make in CALLERS:
        answer = call(make(world))
        assert answer.status_code < 500, (label, answer.text)
        assert "content-type" in answer.headers, label
        if case.needs != OPEN:
            assert answer.status_code == 401, (label, case.path, answer.text)
            # An inactive user's right credentials say so, for the Dashboard's waiting page.
            kind = "AwaitingActivation" if label == "inactive user" else "Unauthenticated"
            assert answer.json()["type"] == kind
            assert "primer's build log" not in answer.text

    reader = world.token("reader@example.com")
    answer = call(reader)
    assert answer.status_code < 500, answer.text
    if case.needs == ANY and case.hidden:
        assert answer.status_code == 200, answer.text
        assert case.hidden not in answer.text, f"{case.path} shows {case.hidden} to a reader"
    elif case.needs not in (OPEN, ANY):
        assert answer.status_code == 403, (case.path, answer.text)
        assert answer.json()["type"] == "Forbidden"
        assert "primer's build log" not in answer.text

    world.grant_holder(case.needs)
    holder = {
        STAFF: lambda: world.token("admin"),
        INTERNAL: lambda: INTERNAL_TOKEN,
    }.get(case.needs, lambda: world.token("holder@example.com"))()
    if case.method == "PUT" and case.path.endswith("change_password"):
        case = Case(case.method, case.path, case.needs, _password_change())
    answer = call(holder)
    assert answer.status_code not in (401, 403), (case.path, answer.text)
    assert answer.status_code < 500, (case.path, answer.text)


def _password_change() -> dict[str, str]:
    return {"old_password": PASSWORD, "new_password": "another long password 43"}
