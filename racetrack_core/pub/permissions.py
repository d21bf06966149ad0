"""Whether a caller may call a job: Lifecycle's ``can-call-job`` answer, cached briefly.

The cache is keyed by (job name, asked version, path, sha256 of the token): the token itself
is never stored, logged or echoed. A fresh answer (younger than ``auth_cache_ttl``) is used as
is. When Lifecycle cannot be reached, a *granted* answer younger than ``auth_stale_ttl`` is
still used, so that Pub keeps serving calls for a while; a refusal is never served stale.
Concurrent checks of one key share a single request to Lifecycle.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from racetrack_core.pub.config import PubConfig
from racetrack_core.pub.instances import InstanceRotation
from racetrack_core.pub.metrics import Metrics

logger = logging.getLogger("racetrack.pub")

DENIAL_PREFIXES = {
    400: "Bad request: ",
    401: "Unauthenticated: ",
    403: "Forbidden: ",
    404: "Job was not found: ",
}

CacheKey = tuple[str, str, str, str]


@dataclass(frozen=True, slots=True)
class Grant:
    """Lifecycle allows the call: to which job version, at which address, on whose behalf.

    ``base_urls`` holds every instance of a replicated job (``base_url`` is the one chosen for
    this call, a ready one: :mod:`racetrack_core.pub.instances`); empty for a job with one
    instance. ``docs_page``: the job's ``/docs`` is Racetrack's own Swagger page (its job
    type says so), left unsandboxed.
    """

    job_name: str
    job_version: str
    base_url: str
    caller: str
    base_urls: tuple[str, ...] = ()
    docs_page: bool = False


@dataclass(frozen=True, slots=True)
class Denial:
    """Lifecycle refuses the call; ``message`` is Pub's whole error message."""

    status: int
    message: str
    job_known: bool


Verdict = Grant | Denial


class LifecycleUnavailable(Exception):
    """Lifecycle did not answer the permission check (unreachable, timed out, or broken)."""


@dataclass(slots=True)
class _Entry:
    verdict: Verdict
    fresh_until: float
    stale_until: float


def cache_key(name: str, version: str, path: str, token: str | None) -> CacheKey:
    digest = hashlib.sha256(token.encode()).hexdigest() if token else ""
    return (name, version, path, digest)


class Permissions:
    """Asks Lifecycle whether a token may call a job, through a bounded cache."""

    def __init__(
        self,
        config: PubConfig,
        session: aiohttp.ClientSession,
        metrics: Metrics,
        clock: Any = time.monotonic,
    ) -> None:
        self._base = config.lifecycle_url.rstrip("/") + "/api/v1/auth/can-call-job/"
        self._fresh_ttl = config.auth_cache_ttl
        self._stale_ttl = max(config.auth_stale_ttl, config.auth_cache_ttl)
        self._size = config.auth_cache_size
        self._timeout = aiohttp.ClientTimeout(total=config.lifecycle_timeout)
        self._tracing_header = config.request_tracing_header
        self._session = session
        self._metrics = metrics
        self._clock = clock
        self._entries: OrderedDict[CacheKey, _Entry] = OrderedDict()
        self._pending: dict[CacheKey, asyncio.Task[Verdict]] = {}
        #: Which instances of replicated jobs are ready, and whose turn it is.
        self.instances = InstanceRotation(
            session, config.instance_probe_interval, config.instance_probe_timeout
        )

    async def check(
        self, name: str, version: str, path: str, token: str | None, tracing_id: str
    ) -> Verdict:
        """The verdict for this call; raises :class:`LifecycleUnavailable` with no usable one."""
        key = cache_key(name, version, path, token)
        entry = self._entries.get(key)
        if entry is not None and entry.fresh_until > self._clock():
            self._metrics.record_cache("hit")
            return self._spread(entry.verdict)
        task = self._pending.get(key)
        if task is None:
            self._metrics.record_cache("miss")
            task = asyncio.ensure_future(self._refresh(key, name, version, path, token, tracing_id))
            self._pending[key] = task
            task.add_done_callback(lambda done: self._settle(key, done))
        return self._spread(await asyncio.shield(task))

    def _spread(self, verdict: Verdict) -> Verdict:
        """A grant to a replicated job goes to its ready instances in turn."""
        if not isinstance(verdict, Grant) or len(verdict.base_urls) < 2:
            return verdict
        return self.fail_over(verdict, ()) or verdict

    def fail_over(self, grant: Grant, avoid: Collection[str]) -> Grant | None:
        """``grant`` aimed at the next ready instance of its job that is not in ``avoid``;
        None for a job with one instance, or when every instance is in ``avoid``."""
        if len(grant.base_urls) < 2:
            return None
        job = (grant.job_name, grant.job_version)
        chosen = self.instances.choose(job, grant.base_urls, avoid)
        if chosen is None:
            return None
        if chosen == grant.base_url:
            return grant
        return dataclasses.replace(grant, base_url=chosen)

    async def close(self) -> None:
        """Stop probing the instances of replicated jobs."""
        await self.instances.close()

    def _settle(self, key: CacheKey, task: asyncio.Task[Verdict]) -> None:
        self._pending.pop(key, None)
        if not task.cancelled():
            task.exception()  # every waiter may be gone; the error is theirs, not the loop's

    def forget(self, name: str, version: str, path: str, token: str | None) -> None:
        """Drop the cached verdict, so that the next check asks Lifecycle again."""
        self._entries.pop(cache_key(name, version, path, token), None)

    async def _refresh(
        self, key: CacheKey, name: str, version: str, path: str, token: str | None, tracing: str
    ) -> Verdict:
        try:
            verdict = await self._ask(name, version, path, token, tracing)
        except LifecycleUnavailable:
            entry = self._entries.get(key)
            if (
                entry is not None
                and isinstance(entry.verdict, Grant)
                and entry.stale_until > self._clock()
            ):
                self._metrics.record_cache("stale")
                return entry.verdict
            raise
        now = self._clock()
        self._entries[key] = _Entry(verdict, now + self._fresh_ttl, now + self._stale_ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return verdict

    async def _ask(
        self, name: str, version: str, path: str, token: str | None, tracing_id: str
    ) -> Verdict:
        url = URL(f"{self._base}{name}/{version}/{path}", encoded=True)
        headers = {self._tracing_header: tracing_id}
        if token:
            headers["X-Racetrack-Auth"] = token
        self._metrics.record_lifecycle_call()
        try:
            async with self._session.get(
                url, headers=headers, timeout=self._timeout, allow_redirects=False
            ) as response:
                status = response.status
                body = await response.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            self._metrics.record_lifecycle_error()
            kind = "timed out" if isinstance(error, asyncio.TimeoutError) else "is unreachable"
            logger.warning("Lifecycle %s (%s): %r", kind, self._base, error)
            raise LifecycleUnavailable(f"Lifecycle {kind} ({type(error).__name__})") from None
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if status == 200 and isinstance(payload, dict):
            job, caller = payload.get("job"), payload.get("caller")
            if isinstance(job, dict) and job.get("internal_name") and job.get("version"):
                base_url = _absolute(str(job["internal_name"]))
                others = job.get("replica_internal_names")
                urls = (
                    tuple(_absolute(str(url)) for url in others)
                    if isinstance(others, list) and len(others) > 1
                    else ()
                )
                return Grant(
                    str(job.get("name") or name),
                    str(job["version"]),
                    base_url,
                    str(caller or ""),
                    urls,
                    docs_page=payload.get("docs_page") is True,
                )
        message = payload.get("error") if isinstance(payload, dict) else None
        if status in DENIAL_PREFIXES and isinstance(message, str):
            # 403 means the job exists and the caller may not call it; 401/404 prove nothing.
            return Denial(status, DENIAL_PREFIXES[status] + message, job_known=status == 403)
        self._metrics.record_lifecycle_error()
        logger.warning("Lifecycle answered can-call-job with %d: %r", status, body[:500])
        raise LifecycleUnavailable(f"Lifecycle answered the permission check with {status}")


def _absolute(url: str) -> str:
    url = url.rstrip("/")
    return url if "://" in url else "http://" + url
