"""What every call to a job shares, over HTTP or WebSocket, on either of Pub's servers.

A call's path names the job and its version (:func:`parse_job_path`); Lifecycle allows the
call or refuses it (:func:`authorise`, through the permission cache); a job address that
refuses the connection is looked up once more (:func:`ask_again`), since the job may have been
redeployed elsewhere; an instance of a replicated job that does not take the connection leaves
the rotation and the call goes to the next one (:func:`fail_over`); and an aiohttp error from a
job that did not answer becomes the :class:`~racetrack_core.pub.failures.Failure` that every
path reports (:func:`describe_failure`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import aiohttp

from racetrack_core.access import has_dot_segment
from racetrack_core.pub import failures
from racetrack_core.pub.failures import Failure
from racetrack_core.pub.metrics import Metrics
from racetrack_core.pub.permissions import Denial, Grant, LifecycleUnavailable, Permissions

#: Job names and versions as Lifecycle accepts them (``latest``, ``1.x`` and ``1.2.3-rc.1+b7``).
JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


@dataclass(frozen=True, slots=True)
class JobPath:
    """``/job/{name}/{version}{tail}``; ``tail`` is empty or starts with ``/``, still encoded."""

    name: str
    version: str
    tail: str

    @property
    def job_path(self) -> str:
        """The path within the job, as Lifecycle's permission check takes it."""
        return self.tail[1:]


def parse_job_path(path: str) -> JobPath | None:
    """The job, version and rest of ``path`` (what follows ``/job/``), or None if malformed."""
    parts = path.split("/", 2)
    if len(parts) < 2 or not JOB_NAME.fullmatch(parts[0]) or not JOB_NAME.fullmatch(parts[1]):
        return None
    return JobPath(parts[0], parts[1], "/" + parts[2] if len(parts) == 3 else "")


@dataclass(frozen=True, slots=True)
class Refusal:
    """The call may not go on: Pub's error status and message for the caller."""

    status: int
    message: str


async def authorise(
    permissions: Permissions,
    metrics: Metrics,
    target: JobPath,
    token: str | None,
    tracing_id: str,
) -> Grant | Refusal:
    """Lifecycle's verdict on the call (counting a refusal), or 503 while it is unreachable.

    A path with a dot segment gets 400 before Lifecycle is asked: a grant on a prefix must not
    stretch past it (:func:`racetrack_core.access.has_dot_segment`).
    """
    if has_dot_segment(target.tail):
        return Refusal(400, failures.DOT_SEGMENT)
    try:
        verdict = await permissions.check(
            target.name, target.version, target.job_path, token, tracing_id
        )
    except LifecycleUnavailable as error:
        return Refusal(503, failures.cannot_check_permissions(error))
    if isinstance(verdict, Denial):
        # Only a job Lifecycle vouched for gets its own labels (made-up names would grow them).
        job = (target.name, target.version) if verdict.job_known else ("-", "-")
        metrics.record_auth_failure(*job, verdict.status)
        return Refusal(verdict.status, verdict.message)
    return verdict


async def ask_again(
    permissions: Permissions,
    target: JobPath,
    token: str | None,
    tracing_id: str,
    grant: Grant,
) -> Grant:
    """Where the job is now, after ``grant``'s address refused a connection (else ``grant``)."""
    permissions.forget(target.name, target.version, target.job_path, token)
    try:
        verdict = await permissions.check(
            target.name, target.version, target.job_path, token, tracing_id
        )
    except LifecycleUnavailable:
        return grant
    return verdict if isinstance(verdict, Grant) else grant


def fail_over(permissions: Permissions, grant: Grant, tried: set[str], reason: str) -> Grant | None:
    """The next instance to try after ``grant``'s did not take the connection (refused it, or
    did not accept it in time: nothing of the call reached it); that one leaves the rotation
    for ``reason``. None for a job with one instance, or when every instance has been tried.
    """
    tried.add(grant.base_url)
    if len(grant.base_urls) < 2:
        return None
    permissions.instances.take_out(grant.base_url, reason)
    return permissions.fail_over(grant, tried)


#: Why an instance left the rotation, as :func:`fail_over` is told.
REFUSED = "refused a connection"
NOT_ACCEPTED = "did not accept a connection in time"


def describe_failure(
    error: BaseException, connect_timeout: float, upstream_timeout: float
) -> Failure:
    """What a call (through aiohttp) that the job did not answer failed of."""
    if isinstance(error, aiohttp.ClientConnectorError):
        return failures.refused()
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return failures.unreachable(connect_timeout)
    if isinstance(error, TimeoutError):
        return failures.silent(upstream_timeout)
    return failures.broken()
