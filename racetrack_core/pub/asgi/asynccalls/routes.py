"""The asynchronous call routes of Pub, and the worker that keeps stored calls running.

``ANY /async/new/job/{name}/{version}[/{path}]``  authorise as a synchronous call, store the
                                                  call through Lifecycle, answer 201 at once
``GET /async/task/{id}/poll``                     the job's answer once the call ended
                                                  (long poll: 202 after ``async_poll_timeout``)
``GET /async/task/{id}/status``                   ``{task_id, status}``

The task id is the capability that reads the answer, as in the original Racetrack: 128 random
bits (:func:`secrets.token_urlsafe`), shown only to the caller that submitted the call. Polling
needs no token. Lifecycle stores the task under a digest of the id (:func:`task_key`), so
neither its database nor its logs hold an id that could read an answer.

The worker takes over ongoing tasks that no Pub has touched for ``async_adopt_after`` seconds
(their Pub stopped mid-call), and purges expired tasks every ``async_purge_interval``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import secrets
from typing import Any

import aiohttp

from racetrack_core.pub import failures
from racetrack_core.pub.asgi.asynccalls.runner import TaskRunner
from racetrack_core.pub.asgi.asynccalls.store import (
    StoreUnavailable,
    Task,
    TaskGone,
    TaskStore,
    task_key,
)
from racetrack_core.pub.asgi.responses import Receive, Scope, Send, send_json
from racetrack_core.pub.config import PubConfig
from racetrack_core.pub.headers import (
    JOB_PAGE_SANDBOX,
    CallReader,
    job_request_headers,
)
from racetrack_core.pub.jobcalls import Refusal, authorise, parse_job_path
from racetrack_core.pub.metrics import Metrics
from racetrack_core.pub.permissions import Grant, Permissions

logger = logging.getLogger("racetrack.pub")

_TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NOT_FOUND = "Asynchronous task was not found: it is unknown, or it has expired"
#: How often a poll of a task that another Pub runs looks at the stored task again.
_POLL_RECHECK = 0.5

RawHeaders = list[tuple[bytes, bytes]]


class AsyncCalls:
    """Pub's asynchronous calls: the routes, and the tasks this Pub runs."""

    def __init__(
        self,
        config: PubConfig,
        session: aiohttp.ClientSession,
        permissions: Permissions,
        metrics: Metrics,
    ) -> None:
        self._config = config
        self._permissions = permissions
        self._metrics = metrics
        self._store = (
            TaskStore(
                config.lifecycle_url, config.internal_token, session, config.lifecycle_timeout
            )
            if config.internal_token
            else None
        )
        self._runner = (
            TaskRunner(config, session, permissions, self._store, metrics)
            if self._store is not None
            else None
        )
        self._calls = CallReader.of(config.request_tracing_header)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._ended: dict[str, asyncio.Event] = {}
        self._worker: asyncio.Task[None] | None = None

    # --- lifetime -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker that takes over stalled tasks and purges expired ones."""
        if self._store is None:
            logger.warning("Pub has no internal token: asynchronous calls are off")
            return
        self._worker = asyncio.ensure_future(self._maintain())

    async def stop(self) -> None:
        """Stop the worker and every task this Pub runs; stored tasks stay ongoing."""
        tasks = list(self._running.values())
        if self._worker is not None:
            tasks.append(self._worker)
            self._worker = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _maintain(self) -> None:
        assert self._store is not None
        config = self._config
        scan_every = max(0.2, min(config.async_heartbeat_interval, config.async_adopt_after / 2))
        next_purge = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                for task in await self._store.idle(config.async_adopt_after):
                    if task.key not in self._running:
                        logger.info(
                            "taking over async task %s… of job %s %s (attempts so far: %d)",
                            task.key[:8],
                            task.job_name,
                            task.job_version,
                            task.attempts,
                        )
                        self._launch(task, None)
                if loop.time() >= next_purge:
                    deleted = await self._store.purge()
                    next_purge = loop.time() + config.async_purge_interval
                    if deleted:
                        logger.info("purged %d expired async task(s)", deleted)
            except StoreUnavailable as error:
                logger.info("async task storage not available yet: %s", error)
            except Exception:
                logger.exception("the async task worker failed; it carries on")
            await asyncio.sleep(scan_every)

    def _launch(self, task: Task, grant: Grant | None) -> None:
        assert self._runner is not None
        key = task.key
        self._ended.setdefault(key, asyncio.Event())
        running = asyncio.ensure_future(self._runner.run(task, grant))
        self._running[key] = running

        def ended(done: asyncio.Task[None]) -> None:
            self._running.pop(key, None)
            event = self._ended.pop(key, None)
            if event is not None:
                event.set()
            if not done.cancelled() and done.exception() is not None:
                logger.error("async task %s… crashed", key[:8], exc_info=done.exception())

        running.add_done_callback(ended)

    # --- routes ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        """Answer ``path``, the part after ``/async/``."""
        tracing = self._calls.tracing(_tracing_of(scope, self._calls.key))
        if self._store is None:
            message = "asynchronous calls are off: Pub has no internal token for Lifecycle"
            await send_json(send, 503, failures.error(message), tracing)
            return
        if path.startswith("new/job/"):
            await self._submit(scope, receive, send, path[8:])
            return
        parts = path.partition("?")[0].split("/")
        if len(parts) == 3 and parts[0] == "task" and parts[2] in ("poll", "status"):
            if scope["method"] not in ("GET", "HEAD"):
                await send_json(send, 405, failures.get_only(f"/async/{path}"), tracing)
            elif not _TASK_ID.fullmatch(parts[1]):
                await send_json(send, 404, failures.error(_NOT_FOUND), tracing)
            elif parts[2] == "poll":
                await self._poll(send, parts[1], tracing)
            else:
                await self._status(send, parts[1], tracing)
            return
        await send_json(send, 404, failures.no_route(scope["path"]), tracing)

    async def _submit(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        assert self._store is not None
        config = self._config
        call, tracing = self._calls.read(scope)
        target = parse_job_path(path)
        if target is None:
            await send_json(send, 404, failures.error(failures.NOT_AN_ASYNC_JOB_PATH), tracing)
            return
        verdict = await authorise(
            self._permissions, self._metrics, target, call.token, call.tracing_id
        )
        if isinstance(verdict, Refusal):
            await send_json(send, verdict.status, failures.error(verdict.message), tracing)
            return
        body = await _read_body(receive, config.async_max_body)
        if body is None:
            return  # the caller hung up
        if isinstance(body, int):
            message = (
                f"Request body too large: an asynchronous call keeps at most "
                f"{config.async_max_body} bytes"
            )
            await send_json(send, 413, failures.error(message), tracing)
            return
        proto = scope.get("scheme", "http")
        headers = job_request_headers(call, verdict.caller, proto, config.request_tracing_header)
        task_id = secrets.token_urlsafe(16)
        query: bytes = scope.get("query_string", b"")
        task = Task(
            key=task_key(task_id),
            job_name=verdict.job_name,
            job_version=verdict.job_version,
            method=scope["method"],
            path=target.tail,
            query=query.decode("latin-1"),
            request_headers=headers,
            request_body=body,
            caller=verdict.caller,
            status="ongoing",
            attempts=0,
            response_status=None,
            response_headers=[],
            response_body=b"",
            error=None,
        )
        try:
            await self._store.create(_stored_fields(task, config.async_call_lifetime))
        except (StoreUnavailable, TaskGone) as error:
            message = f"Pub cannot store the asynchronous call: {error}"
            await send_json(send, 503, failures.error(message), tracing)
            return
        self._launch(task, verdict)
        logger.info(
            "async task %s… of job %s %s for %s",
            task.key[:8],
            task.job_name,
            task.job_version,
            task.caller,
        )
        await send_json(send, 201, {"task_id": task_id, "status": "ongoing"}, tracing)

    async def _poll(self, send: Send, task_id: str, tracing: RawHeaders) -> None:
        key = task_key(task_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._config.async_poll_timeout
        while True:
            task = await self._read(send, key, tracing)
            if task is None:
                return
            if task.status == "completed":
                await _send_answer(send, task, tracing)
                return
            if task.status == "failed":
                message = f"Asynchronous call failed: {task.error}"
                payload = {**failures.error(message), "task_id": task_id}
                await send_json(send, 500, payload, tracing)
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                await send_json(send, 202, {"task_id": task_id, "status": "ongoing"}, tracing)
                return
            ended = self._ended.get(key)
            if ended is None:
                await asyncio.sleep(min(remaining, _POLL_RECHECK))
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ended.wait(), remaining)

    async def _status(self, send: Send, task_id: str, tracing: RawHeaders) -> None:
        task = await self._read(send, task_key(task_id), tracing)
        if task is not None:
            payload = {"task_id": task_id, "status": task.status}
            await send_json(send, 200, payload, tracing)

    async def _read(self, send: Send, key: str, tracing: RawHeaders) -> Task | None:
        assert self._store is not None
        try:
            return await self._store.get(key)
        except TaskGone:
            await send_json(send, 404, failures.error(_NOT_FOUND), tracing)
        except StoreUnavailable as error:
            message = f"Pub cannot read the asynchronous task: {error}"
            await send_json(send, 503, failures.error(message), tracing)
        return None


def _stored_fields(task: Task, lifetime: float) -> dict[str, Any]:
    return {
        "id": task.key,
        "job_name": task.job_name,
        "job_version": task.job_version,
        "method": task.method,
        "path": task.path,
        "query": task.query,
        "request_headers": [list(pair) for pair in task.request_headers],
        "request_body": base64.b64encode(task.request_body).decode(),
        "caller": task.caller,
        "lifetime": lifetime,
    }


async def _read_body(receive: Receive, limit: int) -> bytes | int | None:
    """The whole request body; its size when over ``limit``; None when the caller left."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        if not message.get("more_body", False):
            return size if size > limit else b"".join(chunks)


async def _send_answer(send: Send, task: Task, tracing: RawHeaders) -> None:
    headers = [
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, value in task.response_headers
        if name.encode("latin-1") != tracing[0][0]
    ]
    headers.append((b"content-length", b"%d" % len(task.response_body)))
    headers.append(JOB_PAGE_SANDBOX)  # a job's answer, from Pub's origin: never its Swagger page
    headers.extend(tracing)
    status = task.response_status or 200
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": task.response_body})


def _tracing_of(scope: Scope, tracing_key: bytes) -> str:
    for name, value in scope["headers"]:
        if name == tracing_key and 0 < len(value) <= 128:
            return str(value.decode("latin-1"))
    return secrets.token_hex(16)
