"""Keeping job records true: restore jobs after a restart, and watch their replicas.

On start, every job that was serving is started again from its kept source (``restore``).
Then, every few seconds, the watcher compares the database with what each driver runs:
a replica that crashed for good makes its job ``error`` (with the driver's reason), a job
whose replica is gone is ``lost``, a recovered one is ``running`` again, and a replica that
no job record names is logged once as orphaned.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

import httpx
from sqlalchemy import select as select_columns
from sqlmodel import Session, col, select

from racetrack_core.infrastructure import Replica, ReplicaStatus
from racetrack_core.lifecycle import probes
from racetrack_core.lifecycle.deployments.environment import restored_spec
from racetrack_core.lifecycle.jobs import job_redactor
from racetrack_core.lifecycle.service import LifecycleService, replica_from_json, replica_to_json
from racetrack_core.storage.models import Job, JobStatus, now

log = logging.getLogger("racetrack.watcher")


class DeploymentsInFlight(Protocol):
    """What the watcher asks the deployment pipeline."""

    def is_in_flight(self, replica_id: str) -> bool:
        """Whether a deployment still running has started this replica."""
        ...


class JobWatcher:
    """Restores jobs once, then reconciles job statuses with the drivers until stopped."""

    def __init__(self, service: LifecycleService, deployments: DeploymentsInFlight) -> None:
        self.service = service
        self._deployments = deployments
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="job-watcher", daemon=True)
        self._reported_orphans: set[str] = set()
        self._client = httpx.Client(timeout=2.0, trust_env=False)
        self.restored = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._client.close()

    def _loop(self) -> None:
        try:
            self.restore_all()
        finally:
            self.restored.set()
        while not self._stop.wait(self.service.settings.job_watch_interval):
            try:
                self.reconcile()
            except Exception:
                log.exception("checking jobs failed; trying again")

    def restore_all(self) -> None:
        """Start again every job that was serving before the server stopped."""
        with Session(self.service.engine) as session:
            jobs = list(session.exec(select(Job).where(Job.replica.is_not(None))))  # type: ignore[union-attr]
        for job in jobs:
            if self._stop.is_set():
                return
            try:
                self._restore(job)
            except Exception as exc:
                log.warning("could not restore job %s %s: %s", job.name, job.version, exc)
                self._set_status(job.id, JobStatus.LOST, f"not restored after a restart: {exc}")

    def _restore(self, job: Job) -> None:
        replica = replica_from_json(job.replica)
        if replica is None:
            raise RuntimeError("its source is no longer on the server; redeploy it")
        spec = restored_spec(self.service, job)
        driver = self.service.driver(job.infrastructure_target)
        live = driver.restore(spec, replica)
        probes.wait_until_serving(
            live,
            live_timeout=self.service.settings.job_live_timeout,
            ready_timeout=self.service.settings.job_ready_timeout,
            crashed=lambda: None,
            tail=lambda: driver.logs(job.name, job.version, tail=20),
        )
        with Session(self.service.engine) as session:
            row = session.get(Job, job.id)
            if row is None:
                return
            row.replica = replica_to_json(live)
            row.internal_name = live.url
            row.status = JobStatus.RUNNING
            row.error = None
            row.updated_at = now()
            session.add(row)
            session.commit()
        log.info("restored job %s %s at %s", job.name, job.version, live.url)

    def reconcile(self) -> None:
        """Bring every job's status in line with what its driver reports."""
        drivers = self.service.active_drivers()
        states = {
            state.replica.id: state for driver in drivers.values() for state in driver.replicas()
        }
        with Session(self.service.engine) as session:
            # A few columns of the jobs that have a replica, not whole rows: this runs every
            # few seconds beside the requests, whatever the number of jobs.
            watched = select_columns(
                col(Job.id), col(Job.status), col(Job.replica), col(Job.infrastructure_target)
            ).where(col(Job.replica).is_not(None))
            jobs = list(session.connection().execute(watched))
        known = set()
        for job in jobs:
            replica = replica_from_json(job.replica)
            if replica is None or job.infrastructure_target not in drivers:
                continue
            known.add(replica.id)
            state = states.get(replica.id)
            if state is not None and state.replica.url != replica.url:
                self._move(job.id, state.replica)
            if state is None:
                self._set_status(job.id, JobStatus.LOST, "the job's replica is not running")
            elif state.status == ReplicaStatus.ERROR:
                self._set_status(job.id, JobStatus.ERROR, state.error or "the job crashed")
            elif state.status == ReplicaStatus.RUNNING:
                problem = probes.check_live(self._client, state.replica.url)
                if problem is not None:
                    self._set_status(job.id, JobStatus.ERROR, problem)
                elif job.status != JobStatus.RUNNING:
                    self._set_status(job.id, JobStatus.RUNNING, None)
        for replica_id, state in states.items():
            orphan = replica_id not in known and not self._deployments.is_in_flight(replica_id)
            if orphan and replica_id not in self._reported_orphans:
                self._reported_orphans.add(replica_id)
                log.warning(
                    "orphaned replica %s of job %s %s at %s: no job record names it",
                    replica_id,
                    state.replica.name,
                    state.replica.version,
                    state.replica.url,
                )

    def _move(self, job_id: str, replica: Replica) -> None:
        """The driver restarted a replica on another address: point the record (and Pub) there."""
        with Session(self.service.engine) as session:
            row = session.get(Job, job_id)
            if row is None:
                return
            log.info("job %s %s moved to %s", row.name, row.version, replica.url)
            row.replica = replica_to_json(replica)
            row.internal_name = replica.url
            row.updated_at = now()
            session.add(row)
            session.commit()

    def orphans(self) -> list[str]:
        return sorted(self._reported_orphans)

    def _set_status(self, job_id: str, status: JobStatus, error: str | None) -> None:
        with Session(self.service.engine) as session:
            row = session.get(Job, job_id)
            error = job_redactor(self.service.secrets, row)(error) if row and error else error
            if row is None or (row.status == status and row.error == error):
                return
            log.info("job %s %s is now %s", row.name, row.version, status)
            row.status = status
            row.error = error
            row.updated_at = now()
            session.add(row)
            session.commit()
