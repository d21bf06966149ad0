"""Every Pub route against every kind of caller, with the real Lifecycle answering Pub.

Lifecycle, Pub and a job each run under uvicorn on 127.0.0.1. The callers are those of
tests/lifecycle/test_auth_matrix.py; a job call and an asynchronous submission need
``call_job``, the probes are open, and a task's poll and status take the unguessable task id
as their capability.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from racetrack_core import PluginManager
from racetrack_core.lifecycle import create_app as create_lifecycle
from racetrack_core.lifecycle.accounts import ensure_admin, issue_token
from racetrack_core.lifecycle.permissions import grant
from racetrack_core.pub import PubConfig
from racetrack_core.pub import create_app as create_pub
from racetrack_core.security import hash_password, token_digest
from racetrack_core.settings import Settings
from racetrack_core.storage.database import connect, migrate
from racetrack_core.storage.models import (
    AuthToken,
    Job,
    JobFamily,
    JobStatus,
    Scope,
    SubjectKind,
    User,
)
from tests.pub.servers import Server, job_app

INTERNAL_TOKEN = "rt_internal-token-of-the-pub-matrix-0123456789"
MANIFEST = "name: primer\nowner_email: sample@example.com\njobtype: python3:latest\n"


@dataclass
class Stack:
    pub: str
    engine: Engine

    def token(self, username: str, *, revoked: bool = False, expired: bool = False) -> str:
        token = issue_token(self.engine, SubjectKind.USER, username)
        if revoked or expired:
            with Session(self.engine) as session:
                row = session.exec(
                    select(AuthToken).where(AuthToken.token_digest == token_digest(token))
                ).one()
                row.revoked_at = time.time() - 1 if revoked else None
                row.expires_at = time.time() - 1 if expired else None
                session.add(row)
                session.commit()
        return token


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home: Path = tmp_path_factory.mktemp("pub-matrix") / "home"
    settings = Settings(home=home, internal_token=INTERNAL_TOKEN)
    engine = connect(settings.database_url)
    migrate(engine)
    ensure_admin(engine, home, "an admin password for the matrix")
    job = Server(job_app())
    lifecycle = Server(create_lifecycle(settings, PluginManager(), engine), lifespan="on")
    with Session(engine) as session:
        family = JobFamily(name="primer")
        session.add(family)
        session.flush()
        session.add(
            Job(
                family_id=family.id,
                name="primer",
                version="0.0.1",
                status=JobStatus.RUNNING,
                manifest_yaml=MANIFEST,
                job_type="python3:1.0.0",
                infrastructure_target="local",
                internal_name=job.url,
            )
        )
        hashed = hash_password("a long enough password 42")
        for username, active in (
            ("holder@example.com", True),
            ("reader@example.com", True),
            ("idle@example.com", False),
        ):
            session.add(User(username=username, password_hash=hashed, is_active=active))
        grant(session, SubjectKind.USER, "holder@example.com", Scope.CALL_JOB, family="primer")
        session.commit()
    pub = Server(
        create_pub(
            PubConfig(
                lifecycle_url=lifecycle.url,
                auth_cache_ttl=0.0,
                internal_token=INTERNAL_TOKEN,
            )
        ),
        lifespan="on",
        proxy_headers=False,
    )
    try:
        yield Stack(pub=pub.url, engine=engine)
    finally:
        pub.stop()
        lifecycle.stop()
        job.stop()
        engine.dispose()


CALLERS = ["no token", "malformed", "unknown", "revoked", "expired", "inactive user"]
CALLS = [
    ("POST", "/pub/job/primer/0.0.1/api/v1/perform"),
    ("GET", "/pub/job/primer/latest/api/v1/perform"),
    ("POST", "/job/primer/0.0.1/api/v1/perform"),
    ("POST", "/pub/async/new/job/primer/0.0.1/api/v1/perform"),
]


def caller_token(stack: Stack, caller: str) -> str | None:
    if caller == "no token":
        return None
    if caller == "malformed":
        return "this is not a token !"
    if caller == "unknown":
        return "rt_" + "y" * 43
    if caller == "inactive user":
        return stack.token("idle@example.com")
    return stack.token(
        "holder@example.com", revoked=caller == "revoked", expired=caller == "expired"
    )


@pytest.mark.parametrize(("method", "path"), CALLS)
def test_calls_need_a_valid_token_with_call_job(stack: Stack, method: str, path: str) -> None:
    with httpx.Client(base_url=stack.pub, timeout=10) as client:
        for caller in CALLERS:
            token = caller_token(stack, caller)
            headers = {"X-Racetrack-Auth": token} if token is not None else {}
            answer = client.request(method, path, json={"number": 7907}, headers=headers)
            assert answer.status_code == 401, (caller, answer.text)
            assert answer.headers["content-type"].startswith("application/json")
            assert answer.json()["error"].startswith("Unauthenticated")
            if caller == "no token":
                assert answer.json() == {
                    "error": "Unauthenticated: no header X-Racetrack-Auth: not logged in"
                }
            assert "method" not in answer.json(), "the job's answer must not leak"

        reader = {"X-Racetrack-Auth": stack.token("reader@example.com")}
        refused = client.request(method, path, json={"number": 7907}, headers=reader)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"].startswith("Forbidden")
        assert "method" not in refused.json()

        holder = {"X-Racetrack-Auth": stack.token("holder@example.com")}
        allowed = client.request(method, path, json={"number": 7907}, headers=holder)
        assert allowed.status_code in (200, 201), allowed.text


def test_probes_are_open_and_tasks_are_found_only_by_their_id(stack: Stack) -> None:
    with httpx.Client(base_url=stack.pub, timeout=10) as client:
        for path in ("/pub/live", "/pub/ready", "/pub/health", "/pub/metrics", "/live"):
            assert client.get(path).status_code == 200, path
        for path in ("/pub/async/task/not-a-task/poll", "/pub/async/task/not-a-task/status"):
            answer = client.get(path)
            assert answer.status_code == 404, answer.text
            assert answer.headers["content-type"].startswith("application/json")
        holder = {"X-Racetrack-Auth": stack.token("holder@example.com")}
        submitted = client.post(
            "/pub/async/new/job/primer/0.0.1/api/v1/perform", json={"n": 1}, headers=holder
        )
        task = submitted.json()["task_id"]
        status = client.get(f"/pub/async/task/{task}/status")
        assert status.status_code == 200
        assert status.json()["task_id"] == task
