"""Running one stored asynchronous call against its job, with retries, until it ends.

An attempt is claimed first (``attempts`` goes from n to n+1 only while it is still n), so two
Pub replicas never run the same attempt. Only a connection the job refused or dropped before
answering is retried, after ``async_retry_delay``, and the job's address is asked of Lifecycle
again (it may have been redeployed, or deleted). Any HTTP answer, a 500 included, completes the
task with that answer. While a task runs, Pub touches it every ``async_heartbeat_interval``, so
that another Pub takes it over only when this one stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
from yarl import URL

from racetrack_core.pub import failures
from racetrack_core.pub.asgi.asynccalls.store import (
    StoreUnavailable,
    Task,
    TaskGone,
    TaskStore,
    TaskTaken,
)
from racetrack_core.pub.config import PubConfig
from racetrack_core.pub.headers import response_headers
from racetrack_core.pub.metrics import Metrics
from racetrack_core.pub.permissions import Denial, Grant, LifecycleUnavailable, Permissions

logger = logging.getLogger("racetrack.pub")

T = TypeVar("T")

#: Errors meaning the job never answered: nothing came back on the connection.
RETRYABLE = (
    aiohttp.ClientConnectorError,
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientOSError,
)


class _Failed(Exception):
    """The task ends as failed; the message says why, for its caller."""


class _Retry(Exception):
    """This attempt failed in a way worth another attempt."""


class TaskRunner:
    """Runs tasks; one instance per Pub app."""

    def __init__(
        self,
        config: PubConfig,
        session: aiohttp.ClientSession,
        permissions: Permissions,
        store: TaskStore,
        metrics: Metrics,
    ) -> None:
        self._config = config
        self._session = session
        self._permissions = permissions
        self._store = store
        self._metrics = metrics

    async def run(self, task: Task, grant: Grant | None) -> None:
        """Run ``task`` to its end; ``grant`` is the submission's answer, if this Pub has it."""
        state = _State(task.attempts)
        heartbeat = asyncio.ensure_future(self._heartbeat(task.key, state))
        try:
            await self._attempts(task, grant, state)
        except (TaskGone, TaskTaken) as error:
            logger.info("async task %s… left to others: %s", task.key[:8], error)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _attempts(self, task: Task, grant: Grant | None, state: _State) -> None:
        # A task taken over after its Pub stopped mid-call gets one more attempt, even if that
        # was its last: the stopped attempt may never have reached the job.
        limit = max(self._config.async_max_attempts, task.attempts + 1)
        reason = "no attempt was made"
        first = True
        while state.attempts < limit:
            if not first:
                await asyncio.sleep(self._config.async_retry_delay)
                grant = None
            first = False
            try:
                if grant is None:
                    grant = await self._locate(task, state)
                await self._stored(
                    lambda: self._store.update(
                        task.key, attempts=state.attempts + 1, if_attempts=state.attempts
                    )
                )
                state.attempts += 1
                await self._call(task, grant, state)
                return
            except _Retry as error:
                reason = str(error)
                logger.warning(
                    "async task %s… of job %s %s, attempt %d of %d: %s",
                    task.key[:8],
                    task.job_name,
                    task.job_version,
                    state.attempts,
                    limit,
                    reason,
                )
            except _Failed as error:
                await self._finish(task.key, state, status="failed", error=str(error))
                return
        message = f"{reason}; gave up after {state.attempts} attempt(s)"
        await self._finish(task.key, state, status="failed", error=message)

    async def _locate(self, task: Task, state: _State) -> Grant:
        """Where the job is now: Lifecycle's answer to Pub's internal token.

        While Lifecycle cannot answer, ask again (no attempt is spent: the job was not called)
        until it answers or the task expires.
        """
        path = task.path[1:]
        token = self._config.internal_token
        while True:
            self._permissions.forget(task.job_name, task.job_version, path, token)
            try:
                verdict = await self._permissions.check(
                    task.job_name, task.job_version, path, token, self._tracing_id(task)
                )
                break
            except LifecycleUnavailable as error:
                logger.warning(
                    "async task %s…: Pub cannot ask where job %s %s is: %s",
                    task.key[:8],
                    task.job_name,
                    task.job_version,
                    error,
                )
            await asyncio.sleep(self._config.async_retry_delay)
            with contextlib.suppress(StoreUnavailable):
                await self._store.update(task.key, if_attempts=state.attempts)  # expired?
        if isinstance(verdict, Denial):
            raise _Failed(
                f"job {task.job_name} {task.job_version} cannot be called any more: "
                f"{verdict.message}"
            )
        return verdict

    async def _call(self, task: Task, grant: Grant, state: _State) -> None:
        config = self._config
        url = URL(
            f"{grant.base_url}/pub/job/{grant.job_name}/{grant.job_version}{task.path}"
            + (f"?{task.query}" if task.query else ""),
            encoded=True,
        )
        where = f"job {grant.job_name} {grant.job_version}"
        started = time.perf_counter()
        answered = False
        try:
            async with self._session.request(
                task.method,
                url,
                headers=task.request_headers,
                data=task.request_body or None,
                allow_redirects=False,
            ) as response:
                answered = True
                body = await _read_limited(response, config.async_max_body)
                status = response.status
                headers = response_headers(response.raw_headers, grant.base_url)
        except aiohttp.ConnectionTimeoutError:
            raise _Retry(f"{where} {failures.no_connection(config.connect_timeout)}") from None
        except RETRYABLE as error:
            if answered:
                logger.warning("%s broke off its answer: %r", where, error)
                raise _Failed(f"{where} broke off its answer") from None
            kind = "refused" if isinstance(error, aiohttp.ClientConnectorError) else "broken"
            self._metrics.record_upstream_error(
                grant.job_name, grant.job_version, f"connection_{kind}"
            )
            logger.info("%s at %s: %r", where, grant.base_url, error)
            if kind == "refused":
                raise _Retry(f"{where} {failures.REFUSED}") from None
            raise _Retry(f"{where} {failures.BROKEN}") from None
        except TimeoutError:
            self._metrics.record_upstream_error(grant.job_name, grant.job_version, "timeout")
            raise _Failed(f"{where} {failures.no_answer(config.upstream_timeout)}") from None
        except _TooLarge:
            raise _Failed(
                f"{where} answered with more than {config.async_max_body} bytes, more than "
                "an asynchronous call keeps"
            ) from None
        except aiohttp.ClientError as error:
            logger.warning("%s at %s: %r", where, grant.base_url, error)
            raise _Failed(f"{where} sent a broken answer ({type(error).__name__})") from None
        self._metrics.record_call(
            grant.job_name, grant.job_version, status, time.perf_counter() - started
        )
        kept = [
            [name.decode("latin-1"), value.decode("latin-1")]
            for name, value in headers
            if name != b"content-length"
        ]
        await self._finish(
            task.key,
            state,
            status="completed",
            response_status=status,
            response_headers=kept,
            response_body=body,
        )

    async def _finish(self, key: str, state: _State, **changes: object) -> None:
        await self._stored(lambda: self._store.update(key, if_attempts=state.attempts, **changes))
        logger.info("async task %s… %s", key[:8], changes["status"])

    async def _stored(self, request: Callable[[], Awaitable[T]]) -> T:
        """``request()``, repeated while Lifecycle is unreachable (a task outlives an outage)."""
        delay = 0.5
        while True:
            try:
                return await request()
            except StoreUnavailable as error:
                logger.warning("async task storage: %s; trying again in %g s", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _tracing_id(self, task: Task) -> str:
        wanted = self._config.request_tracing_header.lower()
        return next((v for k, v in task.request_headers if k.lower() == wanted), "")

    async def _heartbeat(self, key: str, state: _State) -> None:
        while True:
            await asyncio.sleep(self._config.async_heartbeat_interval)
            with contextlib.suppress(StoreUnavailable, TaskGone, TaskTaken):
                await self._store.update(key, if_attempts=state.attempts)


class _State:
    __slots__ = ("attempts",)

    def __init__(self, attempts: int) -> None:
        self.attempts = attempts


class _TooLarge(Exception):
    pass


async def _read_limited(response: aiohttp.ClientResponse, limit: int) -> bytes:
    if response.content_length is not None and response.content_length > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    while chunk := await response.content.readany():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)
