"""The deployment pipeline: admits deployments and runs them on a pool of worker threads.

The API answers at once with a deployment's id (``admit``, then ``submit``); a worker runs
its phases (``phases.Phases``). The pipeline keeps what outlives one deployment: the replicas
that deployments have started and not yet handed to a job record (recorded in the database,
so that it answers for every Lifecycle replica), the replaced replicas it is retiring, which
the job watcher asks about so as not to call them orphans (``in_flight_replicas``), and the
timers that stop replaced replicas.

Each deployment admitted here is claimed by this process with a lease (``leases``); a
heartbeat thread renews the claims every third of ``lease_ttl`` and fails the deployments
whose process is gone (another replica's claim expired).
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from sqlmodel import Session, select

from racetrack_core.infrastructure import Replica
from racetrack_core.lifecycle.deployments.phases import Phases
from racetrack_core.lifecycle.deployments.records import admit_deployment, version_lock
from racetrack_core.lifecycle.deployments.request import DeployRequest
from racetrack_core.lifecycle.leases import Leases, holder_name
from racetrack_core.lifecycle.service import LifecycleService
from racetrack_core.storage.models import Deployment, DeploymentStatus, Job

log = logging.getLogger("racetrack.pipeline")


class Pipeline:
    """Runs deployments on a pool of worker threads; one per app, closed by its lifespan."""

    def __init__(self, service: LifecycleService) -> None:
        self._service = service
        self._pool = ThreadPoolExecutor(
            max_workers=service.settings.deploy_workers, thread_name_prefix="deploy"
        )
        self._phases = Phases(service, self)
        #: Serializes the "is one already running?" check with the insert of a new deployment;
        #: notified when a job version being deleted (``_deleting``) is free again.
        self._admission = threading.Condition()
        self._deleting: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self.leases = Leases(service.engine, holder_name(), service.settings.lease_ttl)
        self._held: set[str] = set()
        self._retire_timers: list[threading.Timer] = []
        #: Replaced replicas waiting for their retirement timer (serving calls in flight).
        self._retiring: set[str] = set()
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat, name="deploy-leases", daemon=True)
        self._heartbeat.start()

    def admit(self, request: DeployRequest, *, force: bool) -> str:
        """Record a new deployment and return its id; Conflict (409) when one of the job is
        running, or when the job exists and ``force`` is not set. A deployment of a job version
        being deleted waits for the delete to end, then is admitted as the version's first."""
        with self._admission:
            self._admission.wait_for(lambda: (request.name, request.version) not in self._deleting)
            deployment_id = admit_deployment(
                self._service.engine,
                request,
                force=force,
                claim=(self.leases.holder, self.leases.expiry()),
            )
        with self._lock:
            self._held.add(deployment_id)
        return deployment_id

    @contextmanager
    def holding_version(self, name: str, version: str) -> Iterator[None]:
        """Admit no deployment of the job version, in this process or another that shares
        the database, until the block ends (a delete of it runs in the block); one block of a
        version at a time."""
        key = (name, version)
        with self._admission:
            self._admission.wait_for(lambda: key not in self._deleting)
            self._deleting.add(key)
        try:
            with version_lock(self._service.engine, name, version):
                yield
        finally:
            with self._admission:
                self._deleting.discard(key)
                self._admission.notify_all()

    def submit(self, deployment_id: str, request: DeployRequest) -> None:
        """Run an admitted deployment in the background."""
        self._pool.submit(self.run, deployment_id, request)

    def run(self, deployment_id: str, request: DeployRequest) -> None:
        """Run an admitted deployment to its end in this thread; failures are recorded."""
        with self._lock:
            self._held.add(deployment_id)
        try:
            self._phases.run(deployment_id, request)
        finally:
            with self._lock:
                self._held.discard(deployment_id)

    def is_in_flight(self, replica_id: str) -> bool:
        """Whether a deployment still running (on any Lifecycle replica) has started it."""
        return replica_id in self.leases.in_flight_replicas()

    def in_flight_replicas(self) -> frozenset[str]:
        """The ids of the replicas that deployments still running have started, and of the
        replaced ones this process is retiring: none of them is an orphan."""
        with self._lock:
            retiring = frozenset(self._retiring)
        return self.leases.in_flight_replicas() | retiring

    @contextmanager
    def in_flight(self, deployment_id: str, replica_id: str) -> Iterator[None]:
        """Count a replica a deployment has started as in flight until the block ends."""
        self.leases.mark_in_flight(deployment_id, replica_id)
        try:
            yield
        finally:
            self.leases.mark_in_flight(deployment_id, None)

    def _beat(self) -> None:
        """Renew this process's claims; fail the deployments whose process is gone."""
        while not self._stop.wait(self.leases.ttl / 3):
            try:
                with self._lock:
                    held = set(self._held)
                for lost in self.leases.renew(held):
                    with self._lock:
                        self._held.discard(lost)
                self.leases.fail_abandoned()
            except Exception:
                log.exception("renewing the deployments' leases failed; trying again")

    def retire_later(
        self, target: str, replica: Replica, *, delete: bool, workdir: Path | None
    ) -> None:
        """Stop the replaced replica once Pub's cached routes have moved to the new one;
        after a move, also remove the job's files from the former target."""
        delay = self._service.settings.pub.auth_cache_ttl + 1.0
        driver = self._service.driver(target)

        def retire(old: Replica) -> None:
            try:
                driver.retire(old)
                # A quick move back to the former target must keep its new replica.
                if delete and _left_for_good(self._service, old.name, old.version, target):
                    driver.delete(old.name, old.version)
                if workdir is not None:
                    shutil.rmtree(workdir, ignore_errors=True)
            finally:
                with self._lock:
                    self._retiring.discard(old.id)

        timer = threading.Timer(delay, _retire_quietly, args=(retire, replica))
        timer.daemon = True
        with self._lock:
            self._retiring.add(replica.id)
            self._retire_timers = [t for t in self._retire_timers if t.is_alive()] + [timer]
        timer.start()

    def close(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            timers = list(self._retire_timers)
        for timer in timers:
            timer.cancel()


def _left_for_good(service: LifecycleService, name: str, version: str, target: str) -> bool:
    """Whether a job version no longer runs on ``target`` and no deployment of it is under
    way (which may be moving it back there)."""
    with Session(service.engine) as session:
        job = session.exec(select(Job).where(Job.name == name, Job.version == version)).first()
        if job is not None and job.infrastructure_target == target:
            return False
        running = session.exec(
            select(Deployment).where(
                Deployment.job_name == name,
                Deployment.job_version == version,
                Deployment.status == DeploymentStatus.IN_PROGRESS,
            )
        ).first()
        return running is None


def _retire_quietly(retire: Callable[[Replica], None], replica: Replica) -> None:
    try:
        retire(replica)
    except Exception:
        log.exception("stopping the replaced replica %s failed", replica.id)
