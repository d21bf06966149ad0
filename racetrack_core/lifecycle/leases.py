"""Leases: what one Lifecycle process holds for a while, in the database every replica shares.

A process names itself once (``holder_name``) and holds two kinds of lease, each good for
``lease_ttl`` seconds unless renewed:

- a **deployment's claim** (``deployment.claimed_by`` and ``lease_expires_at``), taken when the
  deployment is admitted and renewed by the pipeline's heartbeat while it runs. A claim that
  expired means its process is gone: any replica then fails the deployment with an error that
  says so (``fail_abandoned``), taking the rows with ``FOR UPDATE SKIP LOCKED`` so that two
  replicas never end the same one (a deployment's secrets live only in the memory of the
  process that received it, so another one cannot carry it on);
- a **named lease** (``Lease`` rows; the job watcher's ``job-watcher``), which one process holds
  at a time: the others wait until it expires.

Times are the database clients' wall clocks: replicas must keep their clocks in step (NTP)
to well within ``lease_ttl``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable

from sqlalchemy import Engine, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from racetrack_core.lifecycle import audit
from racetrack_core.lifecycle.audit import EventKind
from racetrack_core.lifecycle.service import replica_from_json
from racetrack_core.storage.models import Deployment, DeploymentStatus, Job, Lease, ReplicaPort

log = logging.getLogger("racetrack.leases")

_SQLITE_SWEEP = threading.Lock()


def holder_name() -> str:
    """A name for this process that no other replica shares: host, pid and a random part."""
    return f"{socket.gethostname()[:36]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Leases:
    """The leases that one Lifecycle process (``holder``) takes, renews and gives up."""

    def __init__(
        self, engine: Engine, holder: str, ttl: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.engine = engine
        self.holder = holder
        self.ttl = ttl
        self._clock = clock

    def expiry(self) -> float:
        """When a lease taken or renewed now expires."""
        return self._clock() + self.ttl

    # -- named leases --------------------------------------------------------------------------

    def hold(self, name: str) -> bool:
        """Take the lease ``name``, or renew it if this process holds it; False while another
        process holds it and it has not expired."""
        now = self._clock()
        with Session(self.engine) as session:
            row = session.exec(select(Lease).where(Lease.name == name).with_for_update()).first()
            if row is None:
                session.add(Lease(name=name, holder=self.holder, expires_at=now + self.ttl))
                try:
                    session.commit()
                except IntegrityError:  # another process took it between our read and write
                    return False
                return True
            if row.holder != self.holder and row.expires_at > now:
                return False
            if row.holder != self.holder:
                log.info("lease %s: taken over from %s", name, row.holder)
            row.holder = self.holder
            row.expires_at = now + self.ttl
            session.add(row)
            session.commit()
            return True

    def release(self, name: str) -> None:
        """Give up the lease ``name`` if this process holds it, so another takes it at once."""
        with Session(self.engine) as session:
            session.exec(
                delete(Lease).where(col(Lease.name) == name, col(Lease.holder) == self.holder)
            )
            session.commit()

    # -- deployments' claims -------------------------------------------------------------------

    def renew(self, deployment_ids: Iterable[str]) -> set[str]:
        """Renew this process's claims on running deployments; return the ids of those it no
        longer holds (ended, or failed by another replica after a missed heartbeat)."""
        wanted = set(deployment_ids)
        if not wanted:
            return set()
        with Session(self.engine) as session:
            session.exec(
                update(Deployment)
                .where(
                    col(Deployment.id).in_(wanted),
                    col(Deployment.claimed_by) == self.holder,
                    col(Deployment.status) == DeploymentStatus.IN_PROGRESS,
                )
                .values(lease_expires_at=self.expiry())
            )
            session.commit()
            held = session.exec(
                select(Deployment.id).where(
                    col(Deployment.id).in_(wanted),
                    col(Deployment.claimed_by) == self.holder,
                    col(Deployment.status) == DeploymentStatus.IN_PROGRESS,
                )
            )
            return wanted - set(held)

    def in_flight_replicas(self) -> frozenset[str]:
        """The replicas that running deployments (of any live replica) have started and not
        yet handed to a job record."""
        with Session(self.engine) as session:
            ids = session.exec(
                select(Deployment.replica_id).where(
                    col(Deployment.status) == DeploymentStatus.IN_PROGRESS,
                    col(Deployment.replica_id).is_not(None),
                    col(Deployment.lease_expires_at) > self._clock(),
                )
            )
            return frozenset(i for i in ids if i)

    def mark_in_flight(self, deployment_id: str, replica_id: str | None) -> None:
        """Record the replica a deployment has started (None: handed over or stopped)."""
        with Session(self.engine) as session:
            session.exec(
                update(Deployment)
                .where(col(Deployment.id) == deployment_id)
                .values(replica_id=replica_id)
            )
            session.commit()

    def fail_abandoned(self, limit: int = 50) -> list[str]:
        """Fail the running deployments whose claim expired (their process is gone); return
        their ids. Rows another replica is failing at the same moment are skipped."""
        if self.engine.dialect.name == "sqlite":
            # SQLite ignores FOR UPDATE; its database belongs to one process, whose sweeps
            # this lock serializes.
            with _SQLITE_SWEEP:
                return self._fail_abandoned(limit)
        return self._fail_abandoned(limit)

    def _fail_abandoned(self, limit: int) -> list[str]:
        now = self._clock()
        failed: list[str] = []
        with Session(self.engine) as session:
            rows = session.exec(
                select(Deployment)
                .where(
                    col(Deployment.status) == DeploymentStatus.IN_PROGRESS,
                    or_(
                        col(Deployment.lease_expires_at).is_(None),
                        col(Deployment.lease_expires_at) < now,
                    ),
                )
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                holder = row.claimed_by or "a Lifecycle process"
                row.error = (
                    f"the Lifecycle replica running this deployment ({holder}) stopped before it "
                    f"finished (no heartbeat for {self.ttl:g} s, at phase '{row.phase}'); "
                    "deploy again"
                )
                row.build_log += f"deployment failed: {row.error}\n"
                row.status = DeploymentStatus.FAILED
                row.phase = "failed"
                row.finished_at = now
                row.updated_at = now
                session.add(row)
                _release_ports(session, row)
                audit.record(
                    session,
                    EventKind.DEPLOYMENT_FAILED,
                    row.deployed_by,
                    job_name=row.job_name,
                    job_version=row.job_version,
                    deployment_id=row.id,
                    error=row.error,
                )
                failed.append(row.id)
            session.commit()
        for deployment_id in failed:
            log.warning(
                "deployment %s was abandoned by its Lifecycle replica; failed", deployment_id
            )
        return failed


def _release_ports(session: Session, deployment: Deployment) -> None:
    """Free the ports of the replica an abandoned deployment had started, unless its job's
    record already serves from that replica."""
    if deployment.replica_id is None:
        return
    job = session.exec(
        select(Job).where(Job.name == deployment.job_name, Job.version == deployment.job_version)
    ).first()
    serving = replica_from_json(job.replica) if job is not None else None
    if serving is not None and serving.id == deployment.replica_id:
        return
    session.exec(
        delete(ReplicaPort).where(
            col(ReplicaPort.replica_id) == deployment.replica_id,
            col(ReplicaPort.deployment_id) == deployment.id,
        )
    )
