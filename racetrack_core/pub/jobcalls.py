"""What every call to a job shares, over HTTP or WebSocket, on either of Pub's servers.

A call's path names the job and its version (:func:`parse_job_path`); Lifecycle allows the
call or refuses it (:func:`authorise`, through the permission cache); a job address that
refuses the connection is looked up once more (:func:`ask_again`), since the job may have been
redeployed elsewhere; and a job that did not answer is described the same way everywhere
(:func:`describe_failure`), with the status, the metric's ``kind`` and the words of the error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import aiohttp

from racetrack_core.pub.metrics import Metrics
from racetrack_core.pub.permissions import Denial, Grant, LifecycleUnavailable, Permissions

#: Job names and versions as Lifecycle accepts them (``latest``, ``1.x`` and ``1.2.3-rc.1+b7``).
JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
NOT_A_JOB_PATH = "Job was not found: a call's path is /pub/job/{name}/{version}/{path}"


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
    """Lifecycle's verdict on the call (counting a refusal), or 503 while it is unreachable."""
    try:
        verdict = await permissions.check(
            target.name, target.version, target.job_path, token, tracing_id
        )
    except LifecycleUnavailable as error:
        return Refusal(503, f"Pub cannot check permissions: {error}")
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


def describe_failure(
    error: BaseException, connect_timeout: float, upstream_timeout: float
) -> tuple[int, str, str]:
    """Status, metric kind and description of a call (through aiohttp) the job did not answer."""
    if isinstance(error, aiohttp.ClientConnectorError):
        return 502, "connection_refused", "is not reachable (connection refused); it may be down"
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        waited = f"{connect_timeout:g} s"
        return 502, "connection_refused", f"is not reachable (no connection within {waited})"
    if isinstance(error, TimeoutError):
        return 504, "timeout", f"did not answer within {upstream_timeout:g} s"
    return 502, "connection_broken", "broke the connection before answering; it may have died"
