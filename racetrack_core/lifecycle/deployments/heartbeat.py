"""Deployments whose Lifecycle stopped while it ran them: found by a stale heartbeat, failed.

A deployment is run by the Lifecycle process that admitted it. Every ``interval`` seconds that
process touches the ``updated_at`` of each deployment it owns (queued or running), and then
ends as failed every deployment still ``in_progress`` that nobody touched for
``deployment_abandon_seconds``: its process was restarted, killed or lost with its machine.
Without this such a deployment stayed ``in_progress`` for ever, and every later deploy of its
version was refused with 409. Lifecycle replicas that share a database each keep their own
deployments fresh, so one never fails another's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from racetrack_core.lifecycle import audit
from racetrack_core.lifecycle.audit import EventKind
from racetrack_core.storage.models import Deployment, DeploymentStatus, now

log = logging.getLogger("racetrack.pipeline")


def abandoned_message(phase: str | None) -> str:
    return (
        f"the Lifecycle process running this deployment stopped during phase "
        f"'{phase or 'queued'}' (a restart or a crash), so it cannot finish: deploy again"
    )


def touch(engine: Engine, deployment_ids: set[str]) -> None:
    """Mark the owned deployments still in progress as alive now."""
    if not deployment_ids:
        return
    with Session(engine) as session:
        session.execute(
            update(Deployment)
            .where(col(Deployment.id).in_(deployment_ids))
            .where(col(Deployment.status) == DeploymentStatus.IN_PROGRESS)
            .values(updated_at=now())
        )
        session.commit()


def fail_abandoned(engine: Engine, older_than: float, owned: set[str]) -> list[str]:
    """End as failed every in-progress deployment not in ``owned`` whose last sign of life is
    more than ``older_than`` seconds old; return their ids."""
    ended = []
    with Session(engine) as session:
        stale = session.exec(
            select(Deployment)
            .where(Deployment.status == DeploymentStatus.IN_PROGRESS)
            .where(col(Deployment.updated_at) < now() - older_than)
        ).all()
        for row in stale:
            if row.id in owned:
                continue
            message = abandoned_message(row.phase)
            row.build_log += f"deployment failed: {message}\n"
            row.status, row.error, row.phase = DeploymentStatus.FAILED, message, "failed"
            row.finished_at = row.updated_at = now()
            session.add(row)
            audit.record(
                session,
                EventKind.DEPLOYMENT_FAILED,
                row.deployed_by,
                job_name=row.job_name,
                job_version=row.job_version,
                deployment_id=row.id,
                error=message,
            )
            ended.append(row.id)
        session.commit()
    for deployment_id in ended:
        log.warning("deployment %s was abandoned by a stopped Lifecycle: failed", deployment_id)
    return ended


class Heartbeat:
    """A daemon thread: every ``interval`` seconds, ``touch`` what ``owned()`` names, then
    ``fail_abandoned``. Errors (the database away for a while) are logged and retried."""

    def __init__(self, engine: Engine, owned: Callable[[], set[str]], abandon_after: float) -> None:
        self._engine = engine
        self._owned = owned
        self._abandon_after = abandon_after
        self.interval = max(0.2, abandon_after / 4)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="racetrack-deploy-heartbeat", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def beat(self) -> None:
        owned = self._owned()
        touch(self._engine, owned)
        fail_abandoned(self._engine, self._abandon_after, owned)

    def _run(self) -> None:
        while True:
            try:
                self.beat()
            except Exception:
                log.exception("the deployment heartbeat failed; it carries on")
            if self._stop.wait(self.interval):
                return
