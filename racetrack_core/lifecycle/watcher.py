"""Keeping job records true: restore jobs after a restart, and watch their replicas.

On start, every job that was serving is started again from its kept source (``restore``).
Then, every few seconds, the watcher compares the database with what each driver runs and
probes every instance of every job (``job_health``): a replica that crashed for good makes its
job ``error`` (with the driver's reason), a job whose replica is gone is ``lost``, a recovered
one is ``running`` again, each instance's state goes into the job record's ``instances``, and a
replica that no job record names, two rounds running, is logged once as orphaned (one round
could fall between a deployment starting a replica and recording it as in flight). An
instance that the driver reports gone for good (a container removed or stopped by hand) is
started again by the driver, on the port its replica holds; when that fails and nothing of the
replica is left, the replica is stopped, which releases its ports.

With several Lifecycle replicas, one watches at a time: the holder of the ``job-watcher`` lease
(``leases``), renewed on each round. When it stops, another takes the lease once it expires,
restores the jobs (adopting what still runs) and watches from then on.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Protocol

import httpx
from sqlalchemy import select as select_columns
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session, col, select

from racetrack_core.infrastructure import Replica, ReplicaStatus
from racetrack_core.lifecycle import job_health, probes
from racetrack_core.lifecycle.deployments.environment import restored_spec
from racetrack_core.lifecycle.jobs import job_redactor
from racetrack_core.lifecycle.service import LifecycleService, replica_from_json, replica_to_json
from racetrack_core.storage.models import Job, JobStatus, now

log = logging.getLogger("racetrack.watcher")

#: After a failed restore of some instances (others still serving), wait this long to retry.
RESTORE_BACKOFF = 30.0


#: The lease that the watching replica holds.
WATCHER_LEASE = "job-watcher"


class DeploymentsInFlight(Protocol):
    """What the watcher asks the deployment pipeline."""

    def in_flight_replicas(self) -> frozenset[str]:
        """The replicas that deployments still running (on any replica) have started."""
        ...


class Leader(Protocol):
    """The watcher's lease: held by one Lifecycle replica at a time."""

    def hold(self, name: str) -> bool:
        """Take or renew the lease ``name``; False while another process holds it."""
        ...

    def release(self, name: str) -> None: ...


class JobWatcher:
    """Restores jobs once, then reconciles job statuses with the drivers until stopped."""

    def __init__(
        self,
        service: LifecycleService,
        deployments: DeploymentsInFlight,
        leader: Leader | None = None,
    ) -> None:
        self.service = service
        self._deployments = deployments
        self._leader = leader
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="job-watcher", daemon=True)
        self._reported_orphans: set[str] = set()
        self._unnamed: set[str] = set()
        self._restore_after: dict[str, float] = {}
        self._client = httpx.Client(timeout=2.0, trust_env=False)
        self.restored = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._client.close()
        if self._leader is not None:
            try:
                self._leader.release(WATCHER_LEASE)
            except Exception:
                log.exception("giving up the job watcher's lease failed")

    def _leading(self) -> bool:
        if self._leader is None:
            return True
        try:
            return self._leader.hold(WATCHER_LEASE)
        except Exception:
            log.exception("renewing the job watcher's lease failed")
            return False

    def _loop(self) -> None:
        leading = False
        try:
            leading = self._leading()
            if leading:
                self.restore_all()
        finally:
            self.restored.set()
        while not self._stop.wait(self.service.settings.job_watch_interval):
            was_leading, leading = leading, self._leading()
            try:
                if leading and not was_leading:
                    log.info("this replica now watches the jobs; restoring them")
                    self.restore_all()
                if leading:
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
            _commit_unless_deleted(session)
        log.info("restored job %s %s at %s", job.name, job.version, live.url)

    def reconcile(self) -> None:
        """Bring every job's status, and each of its instances', in line with what its driver
        reports and what the instances answer; restore instances that are gone for good."""
        drivers = self.service.active_drivers()
        states = {
            state.replica.id: state for driver in drivers.values() for state in driver.replicas()
        }
        with Session(self.service.engine) as session:
            # A few columns of the jobs that have a replica, not whole rows: this runs every
            # few seconds beside the requests, whatever the number of jobs.
            watched = select_columns(
                col(Job.id), col(Job.replica), col(Job.infrastructure_target)
            ).where(col(Job.replica).is_not(None))
            jobs = list(session.connection().execute(watched))
        known = set()
        in_flight = self._deployments.in_flight_replicas()
        for job in jobs:
            replica = replica_from_json(job.replica)
            if replica is None or job.infrastructure_target not in drivers:
                continue
            known.add(replica.id)
            state = states.get(replica.id)
            if state is not None and state.replica.urls != replica.urls:
                self._move(job.id, state.replica)
            health = job_health.judge(self._client, replica, state)
            self._record(job.id, health)
            if health.restore and replica.id not in in_flight:
                self._restore_instances(job.id, state.replica if state else replica)
        unnamed = {rid for rid in states if rid not in known and rid not in in_flight}
        for replica_id in sorted(unnamed & self._unnamed - self._reported_orphans):
            self._reported_orphans.add(replica_id)
            state = states[replica_id]
            log.warning(
                "orphaned replica %s of job %s %s at %s: no job record names it",
                replica_id,
                state.replica.name,
                state.replica.version,
                state.replica.url,
            )
        self._unnamed = unnamed

    def _restore_instances(self, job_id: str, replica: Replica) -> None:
        """Some instance of ``replica`` is gone (its container removed or stopped by hand):
        the driver starts it again on the port it holds. If that fails while no instance is
        left, the replica is stopped, which releases its ports, and the job stays lost."""
        if time.monotonic() < self._restore_after.get(replica.id, 0.0):
            return
        with Session(self.service.engine) as session:
            job = session.get(Job, job_id)
        if job is None:
            return
        driver = self.service.driver(job.infrastructure_target)
        try:
            restored = driver.restore(restored_spec(self.service, job), replica)
        except Exception as exc:
            self._restore_after[replica.id] = time.monotonic() + RESTORE_BACKOFF
            alive = [s for s in driver.replicas() if s.replica.id == replica.id]
            if alive and alive[0].status != ReplicaStatus.LOST:
                log.warning("could not restore job %s %s: %s", job.name, job.version, exc)
                return
            driver.stop(replica)
            reason = f"its replica is gone and could not be started again ({exc}); redeploy it"
            self._set_status(job_id, JobStatus.LOST, reason)
            log.warning("job %s %s is lost; its ports are released: %s", job.name, job.version, exc)
            return
        log.info("job %s %s: started its missing instances again", job.name, job.version)
        if restored.urls != replica.urls:
            self._move(job_id, restored)

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
            _commit_unless_deleted(session)

    def orphans(self) -> list[str]:
        return sorted(self._reported_orphans)

    def _set_status(self, job_id: str, status: JobStatus, error: str | None) -> None:
        self._record(job_id, job_health.Health(status, error, [], restore=False))

    def _record(self, job_id: str, health: job_health.Health) -> None:
        """Write a job's status, error and instances (only what changed; the instances only
        when given)."""
        with Session(self.service.engine) as session:
            row = session.get(Job, job_id)
            if row is None:
                return
            redact = job_redactor(self.service.secrets, row)
            status = row.status if health.status is None else health.status
            error = row.error if health.status is None else health.error
            error = redact(error) if error else error
            instances = row.instances
            if health.instances:
                for instance in health.instances:
                    if isinstance(instance["error"], str):
                        instance["error"] = redact(instance["error"])
                instances = json.dumps(health.instances)
            if (row.status, row.error, row.instances) == (status, error, instances):
                return
            if row.status != status:
                log.info("job %s %s is now %s", row.name, row.version, status)
            if row.instances != instances and row.instances is not None:
                log.info("job %s %s instances: %s", row.name, row.version, instances)
            row.status = status
            row.error = error
            row.instances = instances
            row.updated_at = now()
            session.add(row)
            _commit_unless_deleted(session)


def _commit_unless_deleted(session: Session) -> None:
    """Commit a change to a job row; a job that a delete removed meanwhile is left gone."""
    try:
        session.commit()
    except StaleDataError:
        session.rollback()
