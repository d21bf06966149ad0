"""Redeploying a job version from the source the server kept (``POST .../redeploy``).

The refusals run against job records put in the database; the redeploy itself rebuilds a real
sample job on the local target, in-process, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select
from starlette.testclient import TestClient

from racetrack_core.lifecycle.accounts import issue_token
from racetrack_core.lifecycle.deployments import DeployRequest, Pipeline
from racetrack_core.lifecycle.permissions import grant, grant_new_user
from racetrack_core.lifecycle.service import LifecycleService
from racetrack_core.manifest import dump_yaml, load_manifest
from racetrack_core.settings import Settings
from racetrack_core.source import pack_build_context
from racetrack_core.storage.database import connect
from racetrack_core.storage.models import (
    AuditEvent,
    Deployment,
    Job,
    Scope,
    SubjectKind,
    User,
)
from tests.lifecycle.records import add_jobs

PRIMER_DIR = Path(__file__).resolve().parents[2] / "sample" / "python-primer"
PRIMER_YAML = dump_yaml({**load_manifest(PRIMER_DIR / "job.yaml").data, "version": "0.0.1"})
REDEPLOY = "/api/v1/job/primer/0.0.1/redeploy"


def auth(token: str) -> dict[str, str]:
    return {"X-Racetrack-Auth": token}


def user_token(settings: Settings, username: str, **deploy_job_on: str) -> str:
    """An active user with a new user's scopes (and ``deploy_job`` on ``family``/``version``
    when given); return a token of theirs."""
    engine = connect(settings.database_url)
    with Session(engine) as session:
        session.add(User(username=username, password_hash="-", is_active=True))
        session.flush()
        grant_new_user(session, username)
        if deploy_job_on:
            grant(session, SubjectKind.USER, username, Scope.DEPLOY_JOB, **deploy_job_on)
        session.commit()
    token = issue_token(engine, SubjectKind.USER, username)
    engine.dispose()
    return token


def kept_source(tmp_path: Path) -> str:
    """A folder standing for the source a deployment kept."""
    source = tmp_path / "kept-source"
    source.mkdir(exist_ok=True)
    return str(source)


def deployments(settings: Settings) -> list[Deployment]:
    engine = connect(settings.database_url)
    with Session(engine) as session:
        rows = list(session.exec(select(Deployment)))
    engine.dispose()
    return rows


def test_a_caller_without_deploy_job_learns_nothing(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    add_jobs(settings, ("primer", "0.0.1"), manifest_yaml=PRIMER_YAML)
    reader = user_token(settings, "reader@example.com")
    known = client.post(REDEPLOY, headers=auth(reader))
    unknown = client.post("/api/v1/job/nope/0.0.1/redeploy", headers=auth(reader))
    assert (known.status_code, unknown.status_code) == (403, 403)
    assert known.json() == {
        "error": "User reader@example.com has no permission 'deploy_job' on job primer; "
        "ask an administrator to grant it",
        "type": "Forbidden",
    }
    assert "nope" in unknown.json()["error"]

    other_version = user_token(
        settings, "jane@example.com", family="primer", version="0.0.2"
    )  # a grant on another version passes the family check, not the version's
    answer = client.post(REDEPLOY, headers=auth(other_version))
    assert answer.status_code == 403
    assert "'deploy_job' on job primer 0.0.1" in answer.json()["error"]
    assert deployments(settings) == []


def test_an_unknown_job_or_version_is_not_found_with_what_exists(
    client: TestClient, token: str, settings: Settings
) -> None:
    add_jobs(settings, ("primer", "0.0.1"), ("primer", "0.0.2"), manifest_yaml=PRIMER_YAML)
    unknown = client.post("/api/v1/job/nope/0.0.1/redeploy", headers=auth(token))
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "no job named nope", "type": "NotFound"}
    for version in ("9.9.9", "latest"):
        answer = client.post(f"/api/v1/job/primer/{version}/redeploy", headers=auth(token))
        assert answer.status_code == 404
        assert answer.json()["error"] == (
            f"job primer has no version {version}; give the exact version, one of: 0.0.1, 0.0.2"
        )


@pytest.mark.parametrize("workspace", [None, "gone"])
def test_a_job_whose_source_is_gone_must_be_deployed_again(
    client: TestClient, token: str, settings: Settings, tmp_path: Path, workspace: str | None
) -> None:
    kept = str(tmp_path / workspace) if workspace else None  # never made, or removed since
    add_jobs(settings, ("primer", "0.0.1"), manifest_yaml=PRIMER_YAML, workspace=kept)
    answer = client.post(REDEPLOY, headers=auth(token))
    assert answer.status_code == 409
    assert answer.json() == {
        "error": "job primer 0.0.1 cannot be redeployed: its source is no longer on the server; "
        "deploy it again from its source (racetrack deploy)",
        "type": "Conflict",
    }
    assert deployments(settings) == []


def test_a_move_shares_the_refusals_and_names_the_target_in_its_hint(
    client: TestClient, token: str, settings: Settings
) -> None:
    add_jobs(settings, ("primer", "0.0.1"), manifest_yaml=PRIMER_YAML, infrastructure_target="old")
    body = {"infrastructure_target": "local"}
    moved = client.post("/api/v1/job/primer/0.0.1/move", json=body, headers=auth(token))
    assert moved.status_code == 409
    assert moved.json()["error"] == (
        "job primer 0.0.1 cannot be moved to 'local': its source is no longer on the server; "
        "deploy it again from its source (racetrack deploy with infrastructure_target: local)"
    )
    unknown = client.post("/api/v1/job/primer/latest/move", json=body, headers=auth(token))
    assert unknown.status_code == 404
    assert "give the exact version, one of: 0.0.1" in unknown.json()["error"]


def test_a_manifest_the_installed_plugins_refuse_is_a_bad_request(
    client: TestClient, token: str, settings: Settings, tmp_path: Path
) -> None:
    stale = PRIMER_YAML.replace("jobtype: python3:latest", "jobtype: pyton3:latest")
    add_jobs(settings, ("primer", "0.0.1"), manifest_yaml=stale, workspace=kept_source(tmp_path))
    answer = client.post(REDEPLOY, headers=auth(token))
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error.startswith(
        "job primer 0.0.1 cannot be redeployed with the plugins installed now: "
        "manifest is not valid: field 'jobtype': unknown job type 'pyton3'"
    )
    assert deployments(settings) == []


def test_a_target_no_longer_installed_is_a_bad_request(
    client: TestClient, token: str, settings: Settings, tmp_path: Path
) -> None:
    add_jobs(
        settings,
        ("primer", "0.0.1"),
        manifest_yaml=PRIMER_YAML,
        workspace=kept_source(tmp_path),
        infrastructure_target="nomad",
    )
    answer = client.post(REDEPLOY, headers=auth(token))
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(
        "job primer 0.0.1 cannot be redeployed: infrastructure target 'nomad' is not "
        "installed (installed: docker, kubernetes, local"
    )


def test_a_redeploy_is_refused_while_the_version_is_being_deployed(
    client: TestClient, token: str, settings: Settings, tmp_path: Path
) -> None:
    add_jobs(
        settings, ("primer", "0.0.1"), manifest_yaml=PRIMER_YAML, workspace=kept_source(tmp_path)
    )
    engine = connect(settings.database_url)
    with Session(engine) as session:
        running = Deployment(
            job_name="primer", job_version="0.0.1", phase="building", manifest_yaml=PRIMER_YAML
        )
        session.add(running)
        session.commit()
        running_id = running.id
    engine.dispose()
    answer = client.post(REDEPLOY, headers=auth(token))
    assert answer.status_code == 409
    assert answer.json()["error"] == (
        f"job primer 0.0.1 is already being deployed (deployment {running_id}, phase: building); "
        "wait for it to finish"
    )
    assert len(deployments(settings)) == 1


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_redeploy_rebuilds_the_job_from_its_kept_source_while_it_keeps_answering(
    client: TestClient, token: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    service: LifecycleService = client.app.state.service  # type: ignore[attr-defined]
    pipeline: Pipeline = client.app.state.pipeline  # type: ignore[attr-defined]
    secrets = {"runtime_env": {"PRIMER_SECRET": "a sealed runtime secret"}}
    first = client.post(
        "/api/v1/deploy",
        json={
            "manifest": load_manifest(PRIMER_DIR / "job.yaml").data,
            "build_context": pack_build_context(PRIMER_DIR),
            "secret_vars": secrets,
        },
        headers=auth(token),
    )
    assert first.status_code == 200, first.text
    assert wait(client, token, first.json()["id"])["status"] == "done"
    before = client.get("/api/v1/job/primer/0.0.1", headers=auth(token)).json()
    jane = user_token(settings, "jane@example.com", family="primer")

    # Hold the worker, so that the redeploy is surely still running when the second one comes.
    gate = threading.Event()
    run = pipeline.run

    def held(deployment_id: str, request: DeployRequest) -> None:
        gate.wait(timeout=60)
        run(deployment_id, request)

    monkeypatch.setattr(pipeline, "run", held)
    try:
        answer = client.post(REDEPLOY, headers=auth(jane))
        assert answer.status_code == 202, answer.text
        started = answer.json()
        assert (started["status"], started["phase"], started["job"]) == (
            "in_progress",
            "queued",
            None,
        )
        assert (started["job_name"], started["job_version"]) == ("primer", "0.0.1")
        assert started["deployed_by"] == "jane@example.com"
        assert started["infrastructure_target"] == "local"

        again = client.post(REDEPLOY, headers=auth(token))
        assert again.status_code == 409
        assert again.json()["error"].startswith(
            f"job primer 0.0.1 is already being deployed (deployment {started['id']}"
        )
    finally:
        gate.set()

    done = wait(client, jane, started["id"], keep_calling=token)
    assert done["status"] == "done", done
    assert done["deployed_by"] == "jane@example.com"
    job = done["job"]
    assert job["deployed_by"] == "jane@example.com"
    assert job["deployment_timestamp"] > before["deployment_timestamp"]
    assert job["internal_name"] != before["internal_name"]
    assert perform(job["internal_name"]) is True
    log = client.get(f"/api/v1/deploy/{started['id']}/build-logs", headers=auth(jane)).json()
    assert "copying the job's source already on the server" in log["logs"]

    with Session(service.engine) as session:
        row = session.exec(select(Job).where(Job.name == "primer")).one()
        assert row.deployment_id == started["id"]
        assert service.secrets.open(row.sealed_secrets)["runtime_env"] == secrets["runtime_env"]
        recorded = [
            (event.kind, event.actor)
            for event in session.exec(select(AuditEvent).where(AuditEvent.job_name == "primer"))
            if json.loads(event.details).get("deployment_id") == started["id"]
        ]
    assert recorded == [("job_redeployed", "jane@example.com")]


def wait(
    client: TestClient, token: str, deployment_id: str, keep_calling: str | None = None
) -> dict[str, Any]:
    """The deployment's record once it is over; with ``keep_calling`` (a token that may read
    the job), call the job all along, as Pub would route a call, and expect an answer."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if keep_calling is not None:
            job = client.get("/api/v1/job/primer/0.0.1", headers=auth(keep_calling)).json()
            assert perform(job["internal_name"]) is True
        record: dict[str, Any] = client.get(
            f"/api/v1/deploy/{deployment_id}", headers=auth(token)
        ).json()
        if record["status"] != "in_progress":
            return record
        time.sleep(0.1)
    raise AssertionError("the deployment did not finish")


def perform(url: str) -> Any:
    answer = httpx.post(f"{url}/api/v1/perform", json={"number": 7907}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()
