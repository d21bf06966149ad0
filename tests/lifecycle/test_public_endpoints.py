"""Public endpoints: requested by a deploy, approved and revoked by staff, open to Pub's check.

The routes run in-process on SQLite and PostgreSQL; job rows are written directly (no job
process is needed to ask Lifecycle whether a path is open). One slow test deploys a real job
to check what a deploy and a redeploy do to the requests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from starlette.testclient import TestClient

from racetrack_core import PluginManager
from racetrack_core.lifecycle import create_app
from racetrack_core.lifecycle.accounts import ensure_admin, issue_token
from racetrack_core.lifecycle.deployments.records import request_public_endpoints
from racetrack_core.lifecycle.permissions import grant
from racetrack_core.manifest import load_manifest
from racetrack_core.security import hash_password
from racetrack_core.settings import Settings
from racetrack_core.source import pack_build_context
from racetrack_core.storage.database import connect, migrate
from racetrack_core.storage.models import (
    AuditEvent,
    Job,
    JobFamily,
    JobStatus,
    PublicEndpointRequest,
    Scope,
    SubjectKind,
    User,
)

PRIMER_DIR = Path(__file__).resolve().parents[2] / "sample" / "python-primer"
NOT_LOGGED_IN = {"error": "no header X-Racetrack-Auth: not logged in", "type": "Unauthenticated"}


@pytest.fixture
def engine(settings: Settings, client: TestClient) -> Iterator[Engine]:
    """The app's database (migrated by the ``client`` fixture)."""
    engine = connect(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def admin(token: str) -> dict[str, str]:
    return {"X-Racetrack-Auth": token}


@pytest.fixture
def developer(engine: Engine) -> dict[str, str]:
    """A user who is not staff, with no grant at all."""
    with Session(engine) as session:
        session.add(
            User(username="dev@example.com", password_hash=hash_password("x" * 12), is_active=True)
        )
        session.commit()
    return {"X-Racetrack-Auth": issue_token(engine, SubjectKind.USER, "dev@example.com")}


def add_job(engine: Engine, name: str, version: str, endpoints: list[str]) -> None:
    """A running job version whose manifest asked for ``endpoints``, as a deploy leaves it."""
    with Session(engine) as session:
        family = session.exec(select(JobFamily).where(JobFamily.name == name)).first()
        if family is None:
            family = JobFamily(name=name)
            session.add(family)
            session.flush()
        session.add(
            Job(
                family_id=family.id,
                name=name,
                version=version,
                status=JobStatus.RUNNING,
                manifest_yaml=f"name: {name}\nversion: {version}\n",
                job_type="python3:1.0.0",
                infrastructure_target="local",
                internal_name="http://127.0.0.1:9",
            )
        )
        request_public_endpoints(session, name, version, endpoints, keep_approvals=False)
        session.commit()


def endpoints_of(client: TestClient, headers: dict[str, str], name: str, version: str) -> Any:
    answer = client.get(f"/api/v1/job/{name}/{version}/public-endpoints", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def request_id(client: TestClient, headers: dict[str, str], name: str, endpoint: str) -> str:
    for row in endpoints_of(client, headers, name, "latest"):
        if row["endpoint"] == endpoint:
            found: str = row["id"]
            return found
    raise AssertionError(f"no request for {endpoint}")


def can_call(client: TestClient, name: str, version: str, path: str) -> Any:
    return client.get(f"/api/v1/auth/can-call-job/{name}/{version}/{path.lstrip('/')}")


def test_a_deploy_requests_its_public_endpoints_inactive(
    client: TestClient, engine: Engine, admin: dict[str, str]
) -> None:
    add_job(engine, "primer", "0.0.1", ["/api/v1/perform", "/api/v1/parameters/"])
    rows = endpoints_of(client, admin, "primer", "0.0.1")
    assert [(r["endpoint"], r["active"], r["approved_by"]) for r in rows] == [
        ("/api/v1/parameters", False, None),
        ("/api/v1/perform", False, None),
    ]
    assert set(rows[0]) == {
        "id",
        "job_name",
        "job_version",
        "endpoint",
        "active",
        "create_time",
        "approved_by",
        "approved_at",
    }
    assert (rows[0]["job_name"], rows[0]["job_version"]) == ("primer", "0.0.1")
    assert endpoints_of(client, admin, "primer", "latest") == rows
    assert client.get("/lifecycle/api/v1/job/primer/0.0.1/public-endpoints", headers=admin).json()


def test_approval_opens_the_endpoint_to_calls_without_a_token_until_revoked(
    client: TestClient, engine: Engine, admin: dict[str, str]
) -> None:
    add_job(engine, "primer", "0.0.1", ["/api/v1/perform"])
    refused = can_call(client, "primer", "0.0.1", "/api/v1/perform")
    assert (refused.status_code, refused.json()) == (401, NOT_LOGGED_IN)

    endpoint_id = request_id(client, admin, "primer", "/api/v1/perform")
    approved = client.post(f"/api/v1/public-endpoints/{endpoint_id}/approve", headers=admin)
    assert approved.status_code == 200, approved.text
    record = approved.json()
    assert (record["active"], record["approved_by"]) == (True, "admin")
    assert abs(record["approved_at"] - time.time()) < 5

    for path in ("/api/v1/perform", "/api/v1/perform/", "/api/v1/perform/sub"):
        allowed = can_call(client, "primer", "0.0.1", path)
        assert allowed.status_code == 200, allowed.text
        assert allowed.json()["caller"] is None
        assert allowed.json()["job"]["version"] == "0.0.1"
    for path in ("/api/v1/performance", "/api/v1/parameters", "/docs"):
        assert can_call(client, "primer", "0.0.1", path).status_code == 401, path

    revoked = client.delete(f"/api/v1/public-endpoints/{endpoint_id}/approve", headers=admin)
    assert revoked.status_code == 200, revoked.text
    assert (revoked.json()["active"], revoked.json()["approved_by"]) == (False, None)
    assert revoked.json()["approved_at"] is None
    assert can_call(client, "primer", "0.0.1", "/api/v1/perform").status_code == 401


def test_approving_and_revoking_are_audited_once(
    client: TestClient, engine: Engine, admin: dict[str, str]
) -> None:
    add_job(engine, "primer", "0.0.1", ["/api/v1/perform"])
    endpoint_id = request_id(client, admin, "primer", "/api/v1/perform")
    first = client.post(f"/api/v1/public-endpoints/{endpoint_id}/approve", headers=admin).json()
    again = client.post(f"/api/v1/public-endpoints/{endpoint_id}/approve", headers=admin).json()
    assert again == first  # approving twice keeps the first approval
    client.delete(f"/api/v1/public-endpoints/{endpoint_id}/approve", headers=admin)
    client.delete(f"/api/v1/public-endpoints/{endpoint_id}/approve", headers=admin)
    with Session(engine) as session:
        events = [
            (event.kind, event.actor, event.job_name, event.job_version, json.loads(event.details))
            for event in session.exec(select(AuditEvent).order_by(col(AuditEvent.time)))
            if event.kind in ("public_endpoint_approved", "permission_revoked")
        ]
    assert events == [
        ("public_endpoint_approved", "admin", "primer", "0.0.1", {"endpoint": "/api/v1/perform"}),
        ("permission_revoked", "admin", "primer", "0.0.1", {"public_endpoint": "/api/v1/perform"}),
    ]


def test_the_listing_filters_pending_and_approved_requests(
    client: TestClient, engine: Engine, admin: dict[str, str]
) -> None:
    add_job(engine, "primer", "0.0.1", ["/api/v1/perform", "/api/v1/parameters"])
    add_job(engine, "adder", "1.0.0", ["/api/v1/perform"])
    approved_id = request_id(client, admin, "primer", "/api/v1/perform")
    client.post(f"/api/v1/public-endpoints/{approved_id}/approve", headers=admin)

    def listed(query: str) -> list[tuple[str, str, str]]:
        answer = client.get(f"/api/v1/public-endpoints{query}", headers=admin)
        assert answer.status_code == 200, answer.text
        return [(r["job_name"], r["job_version"], r["endpoint"]) for r in answer.json()]

    assert listed("") == [
        ("adder", "1.0.0", "/api/v1/perform"),
        ("primer", "0.0.1", "/api/v1/parameters"),
        ("primer", "0.0.1", "/api/v1/perform"),
    ]
    assert listed("?pending=true") == [
        ("adder", "1.0.0", "/api/v1/perform"),
        ("primer", "0.0.1", "/api/v1/parameters"),
    ]
    assert listed("?pending=false") == [("primer", "0.0.1", "/api/v1/perform")]
    assert listed("?pending=true&job_name=primer") == [("primer", "0.0.1", "/api/v1/parameters")]
    bad = client.get("/api/v1/public-endpoints?pending=maybe", headers=admin)
    assert bad.status_code == 400
    assert bad.json()["error"] == "query parameter 'pending' must be true or false, not 'maybe'"


def test_only_administrators_approve_revoke_and_list(
    client: TestClient, engine: Engine, admin: dict[str, str], developer: dict[str, str]
) -> None:
    add_job(engine, "primer", "0.0.1", ["/api/v1/perform"])
    endpoint_id = request_id(client, admin, "primer", "/api/v1/perform")
    not_staff = {
        "error": "User dev@example.com is not a staff member and has no permission "
        "'call_admin_api'; ask an administrator",
        "type": "Forbidden",
    }
    for method, path in [
        ("POST", f"/api/v1/public-endpoints/{endpoint_id}/approve"),
        ("DELETE", f"/api/v1/public-endpoints/{endpoint_id}/approve"),
        ("GET", "/api/v1/public-endpoints?pending=true"),
    ]:
        answer = client.request(method, path, headers=developer)
        assert (answer.status_code, answer.json()) == (403, not_staff), path
        missing = client.request(method, path)
        assert (missing.status_code, missing.json()) == (401, NOT_LOGGED_IN), path
    assert endpoints_of(client, admin, "primer", "0.0.1")[0]["active"] is False


def test_reading_a_jobs_requests_needs_read_job(
    client: TestClient, engine: Engine, developer: dict[str, str]
) -> None:
    add_job(engine, "primer", "0.0.1", ["/api/v1/perform"])
    path = "/api/v1/job/primer/0.0.1/public-endpoints"
    refused = client.get(path, headers=developer)
    assert refused.status_code == 403
    assert refused.json()["error"].startswith(
        "User dev@example.com has no permission 'read_job' on job primer"
    )
    # The same answer for a family that does not exist: nothing is revealed.
    assert client.get("/api/v1/job/nope/0.0.1/public-endpoints", headers=developer).json() == {
        "error": "User dev@example.com has no permission 'read_job' on job nope; "
        "ask an administrator to grant it",
        "type": "Forbidden",
    }
    assert (client.get(path).status_code, client.get(path).json()) == (401, NOT_LOGGED_IN)

    with Session(engine) as session:
        grant(session, SubjectKind.USER, "dev@example.com", Scope.READ_JOB, family="primer")
        session.commit()
    assert [r["endpoint"] for r in endpoints_of(client, developer, "primer", "0.0.1")] == [
        "/api/v1/perform"
    ]


def test_unknown_jobs_and_requests_are_404(client: TestClient, admin: dict[str, str]) -> None:
    unknown_job = client.get("/api/v1/job/nope/0.0.1/public-endpoints", headers=admin)
    assert (unknown_job.status_code, unknown_job.json()["error"]) == (404, "no job named nope")
    for method in ("POST", "DELETE"):
        answer = client.request(method, "/api/v1/public-endpoints/abc/approve", headers=admin)
        assert answer.status_code == 404
        assert answer.json() == {
            "error": "no public endpoint request with id abc; "
            "GET /api/v1/public-endpoints lists them",
            "type": "NotFound",
        }


def test_a_redeploy_keeps_the_approvals_of_the_endpoints_it_still_lists(engine: Engine) -> None:
    add_job(engine, "primer", "0.0.1", ["/api/v1/perform", "/api/v1/parameters"])
    with Session(engine) as session:
        for row in session.exec(select(PublicEndpointRequest)):
            row.active, row.approved_by = True, "admin"
            session.add(row)
        session.commit()

        request_public_endpoints(
            session, "primer", "0.0.1", ["/api/v1/perform", "/api/v1/new"], keep_approvals=True
        )
        session.commit()
        rows = session.exec(
            select(PublicEndpointRequest).order_by(col(PublicEndpointRequest.endpoint))
        )
        assert [(r.endpoint, r.active, r.approved_by) for r in rows] == [
            ("/api/v1/new", False, None),
            ("/api/v1/perform", True, "admin"),
        ]

        # A first deployment (after a delete, say) starts over: nothing stays approved.
        request_public_endpoints(
            session, "primer", "0.0.1", ["/api/v1/perform"], keep_approvals=False
        )
        session.commit()
        rows = session.exec(select(PublicEndpointRequest))
        assert [(r.endpoint, r.active) for r in rows] == [("/api/v1/perform", False)]

        request_public_endpoints(session, "primer", "0.0.1", [], keep_approvals=True)
        session.commit()
        assert session.exec(select(PublicEndpointRequest)).all() == []


def test_an_approval_of_one_version_does_not_open_another_through_latest(
    client: TestClient, engine: Engine, admin: dict[str, str]
) -> None:
    add_job(engine, "primer", "0.0.1", ["/api/v1/perform"])
    add_job(engine, "primer", "0.0.2", ["/api/v1/perform"])
    old = next(
        row["id"]
        for row in endpoints_of(client, admin, "primer", "0.0.1")
        if row["endpoint"] == "/api/v1/perform"
    )
    client.post(f"/api/v1/public-endpoints/{old}/approve", headers=admin)
    assert can_call(client, "primer", "0.0.1", "/api/v1/perform").status_code == 200
    assert can_call(client, "primer", "0.0.2", "/api/v1/perform").status_code == 401
    # latest is 0.0.2, whose endpoint nobody approved.
    assert can_call(client, "primer", "latest", "/api/v1/perform").status_code == 401


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_deploying_and_redeploying_a_real_job_requests_its_endpoints(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    engine = connect(settings.database_url)
    migrate(engine)
    ensure_admin(engine, settings.home, "a password for the test")
    headers = {"X-Racetrack-Auth": issue_token(engine, SubjectKind.USER, "admin")}
    manifest = {
        **load_manifest(PRIMER_DIR / "job.yaml").data,
        "public_endpoints": ["/api/v1/perform"],
    }
    with TestClient(create_app(settings, PluginManager(), engine)) as client:

        def deploy(manifest: dict[str, Any]) -> None:
            body = {"manifest": manifest, "build_context": pack_build_context(PRIMER_DIR)}
            started = client.post("/api/v1/deploy", json={**body, "force": True}, headers=headers)
            assert started.status_code == 200, started.text
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                record = client.get(f"/api/v1/deploy/{started.json()['id']}", headers=headers)
                if record.json()["status"] != "in_progress":
                    assert record.json()["status"] == "done", record.json()
                    return
                time.sleep(0.1)
            raise AssertionError("the deployment did not finish")

        deploy(manifest)
        rows = endpoints_of(client, headers, "primer", "0.0.1")
        assert [(r["endpoint"], r["active"]) for r in rows] == [("/api/v1/perform", False)]
        client.post(f"/api/v1/public-endpoints/{rows[0]['id']}/approve", headers=headers)

        deploy(manifest)  # the same manifest again: the approval stays
        assert endpoints_of(client, headers, "primer", "0.0.1")[0]["active"] is True

        deploy({**manifest, "public_endpoints": ["/api/v1/parameters"]})
        rows = endpoints_of(client, headers, "primer", "0.0.1")
        assert [(r["endpoint"], r["active"]) for r in rows] == [("/api/v1/parameters", False)]
    engine.dispose()
