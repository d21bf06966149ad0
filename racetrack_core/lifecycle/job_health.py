"""A job's health from its driver's report and its instances' probes: what the watcher records.

Every instance of a job's replica (one, or the manifest's ``replicas``) is judged on its own:
the driver's state first (starting, crashed, gone), then, for a running one, ``GET /live`` and
``GET /ready``. The job is ``running`` while at least one instance is ready (Pub sends calls to
the ready ones only), and each instance's state is kept in the job record's ``instances``, so
that a replica that is down is named even while the job still serves.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from racetrack_core.infrastructure import InstanceState, Replica, ReplicaState, ReplicaStatus
from racetrack_core.lifecycle import probes
from racetrack_core.storage.models import JobStatus

#: What an instance's ``status`` says in the job record.
READY = "ready"
NOT_READY = "not_ready"
NOT_LIVE = "not_live"


@dataclass(frozen=True)
class Health:
    """What the watcher records for a job, and whether to ask the driver to restore it.

    ``status`` None leaves the job's status as it is (its instances are still starting).
    ``instances`` is ``[{url, name, status, error, restarts}, ...]``, one per instance.
    ``restore`` is True when an instance is gone and the driver will not bring it back alone.
    """

    status: JobStatus | None
    error: str | None
    instances: list[dict[str, object]]
    restore: bool


def judge(client: httpx.Client, replica: Replica, state: ReplicaState | None) -> Health:
    """The health of the job whose recorded replica is ``replica``, which its driver reports as
    ``state`` (None: the driver does not know it)."""
    if state is None:
        gone = "the job's replica is not running"
        instances = [_report(url, ReplicaStatus.LOST.value, gone) for url in replica.urls]
        return Health(JobStatus.LOST, gone, instances, restore=False)
    parts = state.instances or (
        InstanceState(state.replica.url, state.status, state.error, state.restarts),
    )
    reports = [_probe(client, part) for part in parts]
    statuses = [str(report["status"]) for report in reports]
    restore = ReplicaStatus.LOST.value in statuses
    if READY in statuses:
        return Health(JobStatus.RUNNING, None, reports, restore)
    if state.status == ReplicaStatus.ERROR:
        return Health(JobStatus.ERROR, state.error or "the job crashed", reports, restore)
    if set(statuses) == {ReplicaStatus.LOST.value}:
        return Health(JobStatus.LOST, str(reports[0]["error"]), reports, restore)
    if NOT_LIVE in statuses:
        problem = next(r["error"] for r in reports if r["status"] == NOT_LIVE)
        return Health(JobStatus.ERROR, str(problem), reports, restore)
    if NOT_READY in statuses:  # live but not ready (yet): /live alone decides the job's status
        return Health(JobStatus.RUNNING, None, reports, restore)
    return Health(None, None, reports, restore)


def _probe(client: httpx.Client, part: InstanceState) -> dict[str, object]:
    if part.status != ReplicaStatus.RUNNING:
        return _report(part.url, part.status.value, part.error, part.restarts, part.name)
    problem = probes.check_live(client, part.url)
    if problem is not None:
        return _report(part.url, NOT_LIVE, problem, part.restarts, part.name)
    problem = probes.check_ready(client, part.url)
    status = READY if problem is None else NOT_READY
    return _report(part.url, status, problem, part.restarts, part.name)


def _report(
    url: str, status: str, error: str | None, restarts: int = 0, name: str = ""
) -> dict[str, object]:
    return {"url": url, "name": name, "status": status, "error": error, "restarts": restarts}
