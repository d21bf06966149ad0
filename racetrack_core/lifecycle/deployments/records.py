"""What a deployment writes: its row and build log, and the job record Pub reads.

A deployment row is made when the request is admitted (``admit_deployment``), then follows
the run: each phase with its time, warnings and build-log lines (``Recorder``, which scrubs
the request's secrets from all of them), and its end, done or failed. When the new replica
serves, ``record_serving_job`` points the job's record at it in one transaction.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text
from sqlmodel import Session, select

from racetrack_core.infrastructure import JobSpec, Replica
from racetrack_core.lifecycle import audit
from racetrack_core.lifecycle.audit import EventKind
from racetrack_core.lifecycle.deployments.request import DeployRequest
from racetrack_core.lifecycle.jobs import ongoing_deployment
from racetrack_core.lifecycle.permissions import grant_family_owner
from racetrack_core.lifecycle.responses import Conflict
from racetrack_core.lifecycle.service import replica_from_json, replica_to_json
from racetrack_core.manifest import dump_yaml
from racetrack_core.redaction import Redactor
from racetrack_core.storage.models import (
    Deployment,
    DeploymentStatus,
    Job,
    JobFamily,
    JobStatus,
    PublicEndpointRequest,
    now,
)

log = logging.getLogger("racetrack.pipeline")

#: How often buffered build-log lines are written to the deployment row (seconds).
LOG_FLUSH_INTERVAL = 0.5


def admit_deployment(
    engine: Engine, request: DeployRequest, *, force: bool, claim: tuple[str, float] | None = None
) -> str:
    """Record a new deployment, refusing a second one of a job at once or a redeploy
    without ``force``; return its id. ``claim`` is the admitting process's name and when its
    lease on the deployment expires. The caller serializes the admissions of its process; on
    PostgreSQL a transaction-scoped advisory lock on the job version serializes every
    process's."""
    name, version = request.name, request.version
    with Session(engine) as session:
        if engine.dialect.name == "postgresql":
            session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                {"key": _version_key(name, version)},
            )
        ongoing = ongoing_deployment(session, name, version)
        if ongoing is not None:
            raise Conflict(
                f"job {name} {version} is already being deployed (deployment {ongoing.id}, "
                f"phase: {ongoing.phase}); wait for it to finish"
            )
        existing = session.exec(select(Job).where(Job.name == name, Job.version == version)).first()
        if existing is not None and not force:
            raise Conflict(
                f"job {name} {version} is already deployed; deploy the next version, "
                "or use --force to redeploy this one"
            )
        deployment = Deployment(
            job_name=name,
            job_version=version,
            phase="queued",
            phases=json.dumps([["queued", round(time.time(), 3)]]),
            manifest_yaml=dump_yaml(request.manifest),
            infrastructure_target=request.target,
            job_type=request.job_type.ref,
            deployed_by=request.deployed_by,
            claimed_by=claim[0] if claim else None,
            lease_expires_at=claim[1] if claim else None,
        )
        session.add(deployment)
        session.commit()
        return deployment.id


@contextmanager
def version_lock(engine: Engine, name: str, version: str) -> Iterator[None]:
    """Keep every process that shares this PostgreSQL database from admitting a deployment
    of the job version until the block ends (it takes the lock admissions take, for the
    session of a connection held meanwhile). Nothing on SQLite, which one process uses."""
    if engine.dialect.name != "postgresql":
        yield
        return
    key = {"key": _version_key(name, version)}
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(hashtext(:key))"), key)
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(hashtext(:key))"), key)
            connection.commit()


def _version_key(name: str, version: str) -> str:
    return f"racetrack-deploy:{name}:{version}"


class Recorder:
    """Writes a deployment's phases, warnings and build log to its row, scrubbing secrets."""

    def __init__(self, engine: Engine, deployment_id: str, secrets: list[str]) -> None:
        self._engine = engine
        self.deployment_id = deployment_id
        self.scrub = Redactor(secrets)  # every secret, in its common encodings too
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._last_flush = 0.0

    def line(self, text: str) -> None:
        with self._lock:
            self._lines.append(self.scrub(text.rstrip("\n")))
            due = time.monotonic() - self._last_flush > LOG_FLUSH_INTERVAL
        if due:
            self.flush()

    def flush(self, **changes: Any) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
            self._last_flush = time.monotonic()
        with Session(self._engine) as session:
            row = session.get(Deployment, self.deployment_id)
            assert row is not None
            if row.status != DeploymentStatus.IN_PROGRESS:
                # Ended already: failed by another replica after this process missed its
                # heartbeats. Its outcome stands.
                return
            if lines:
                row.build_log += "".join(f"{line}\n" for line in lines)
            for key, value in changes.items():
                setattr(row, key, value)
            row.updated_at = now()
            session.add(row)
            session.commit()

    def phase(self, name: str) -> None:
        log.info("deployment %s: %s", self.deployment_id, name)
        self.line(f"==> {name}")
        with Session(self._engine) as session:
            row = session.get(Deployment, self.deployment_id)
            assert row is not None
            phases = [*json.loads(row.phases), [name, round(now(), 3)]]
        self.flush(phase=name, phases=json.dumps(phases))

    def warn(self, message: str) -> None:
        with Session(self._engine) as session:
            row = session.get(Deployment, self.deployment_id)
            assert row is not None
            warnings = [*json.loads(row.warnings), self.scrub(message)]
        self.flush(warnings=json.dumps(warnings))

    def done(self) -> None:
        self.line("deployment done")
        self.flush(status=DeploymentStatus.DONE, phase="done", finished_at=now())

    def failed(self, request: DeployRequest, message: str) -> None:
        """End the deployment as failed with ``message`` (already scrubbed), and audit it."""
        self.line(f"deployment failed: {message}")
        self.flush(status=DeploymentStatus.FAILED, error=message, finished_at=now(), phase="failed")
        with Session(self._engine) as session:
            audit.record(
                session,
                EventKind.DEPLOYMENT_FAILED,
                request.deployed_by,
                job_name=request.name,
                job_version=request.version,
                deployment_id=self.deployment_id,
                error=message,
            )
            session.commit()


@dataclass(frozen=True)
class Replaced:
    """The replica a deployment took traffic from, where it ran and the deployment that
    started it (whose files go with it)."""

    replica: Replica
    target: str
    deployment_id: str | None


def record_serving_job(
    engine: Engine,
    request: DeployRequest,
    spec: JobSpec,
    replica: Replica,
    *,
    deployment_id: str,
    sealed_secrets: str,
) -> Replaced | None:
    """Point the job's record (which Pub reads) at the new replica, creating the family (its
    first deployer owns it) and the job when new; return what served before, if anything."""
    with Session(engine) as session:
        family = session.exec(select(JobFamily).where(JobFamily.name == spec.name)).first()
        if family is None:
            family = JobFamily(name=spec.name)
            session.add(family)
            session.flush()
            if request.caller is not None:
                grant_family_owner(session, request.caller, spec.name)
        job = session.exec(
            select(Job).where(Job.name == spec.name, Job.version == spec.version)
        ).first()
        replaced = None
        if job is not None:
            old = replica_from_json(job.replica)
            if old is not None:
                replaced = Replaced(old, job.infrastructure_target, job.deployment_id)
        redeploy = job is not None
        if job is None:
            job = Job(
                family_id=family.id,
                name=spec.name,
                version=spec.version,
                manifest_yaml="",
                job_type="",
                infrastructure_target=request.target,
            )
        job.status = JobStatus.RUNNING
        job.manifest_yaml = dump_yaml(request.manifest)
        job.job_type = request.job_type.ref
        job.infrastructure_target = request.target
        job.internal_name = replica.url
        job.replica = replica_to_json(replica)
        job.instances = None  # the watcher reports the new instances
        job.deployment_timestamp = spec.deployment_timestamp
        job.deployment_id = deployment_id
        job.workspace = str(spec.workspace)
        job.sealed_secrets = sealed_secrets
        job.deployed_by = request.deployed_by
        job.error = None
        job.updated_at = now()
        session.add(job)
        request_public_endpoints(
            session,
            spec.name,
            spec.version,
            request.manifest.get("public_endpoints") or [],
            keep_approvals=redeploy,
        )
        audit.record(
            session,
            EventKind.JOB_REDEPLOYED if redeploy else EventKind.JOB_DEPLOYED,
            request.deployed_by,
            job_name=spec.name,
            job_version=spec.version,
            deployment_id=deployment_id,
        )
        session.commit()
        session.refresh(job)
        deployment = session.get(Deployment, deployment_id)
        assert deployment is not None
        deployment.job_id = job.id
        session.add(deployment)
        session.commit()
    return replaced


def request_public_endpoints(
    session: Session, name: str, version: str, endpoints: list[str], *, keep_approvals: bool
) -> None:
    """Make the manifest's ``public_endpoints`` the requests of this job version (the caller
    commits). New ones start inactive, waiting for a staff member's approval; on a redeploy
    (``keep_approvals``) an endpoint that stays keeps its approval. Endpoints no longer listed
    are dropped, and a first deployment drops whatever a deleted job of that version left.
    """
    wanted = dict.fromkeys("/" + str(endpoint).strip("/") for endpoint in endpoints)
    existing = session.exec(
        select(PublicEndpointRequest).where(
            PublicEndpointRequest.job_name == name, PublicEndpointRequest.job_version == version
        )
    ).all()
    kept: set[str] = set()
    for row in existing:
        if keep_approvals and row.endpoint in wanted:
            kept.add(row.endpoint)
        else:
            session.delete(row)
    session.flush()
    for endpoint in wanted:
        if endpoint not in kept:
            session.add(
                PublicEndpointRequest(job_name=name, job_version=version, endpoint=endpoint)
            )
