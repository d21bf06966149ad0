"""``POST /api/v1/<endpoint>``: a JSON object of keyword arguments in, the method's result out.

The job's hot path, so it is plain ASGI, reached by ``router.CallRouter`` ahead of Starlette's
router: the body is read in one piece with its size limited, the arguments are checked against
the method's signature, the method is awaited (``async def``) or run in a worker thread
(``def``), and the answer is sent as two ASGI messages with the headers that Starlette's
``Response`` would send.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.types import Receive, Scope, Send

from .chaining import bind_tracing_id, reset_tracing_id
from .encoding import encode_json, error_body
from .entrypoint import CallEndpoint, JobInterface
from .errors import ArgumentError, CallError, NotFound, PayloadTooLarge
from .limiter import CallLimiter
from .metrics import CallMetrics
from .runtime import JobRuntime
from .workers import WorkerThreads

logger = logging.getLogger("racetrack.job")


class ClientDisconnected(Exception):
    """The client went away before its body was read: there is no one to answer."""


class CallService:
    """Serves the calls to a job's methods (``perform`` and the auxiliary endpoints)."""

    def __init__(
        self,
        runtime: JobRuntime,
        *,
        max_body_bytes: int,
        metrics: CallMetrics,
        limiter: CallLimiter,
        workers: WorkerThreads,
    ) -> None:
        self.runtime = runtime
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.limiter = limiter
        self.workers = workers

    async def serve(self, path: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a call to the endpoint at ``path`` (``/perform``, without ``/api/v1``)."""
        try:
            endpoint = find_call(self.runtime.require_ready(), path)
            arguments = parse_arguments(await read_body(scope, receive, self.max_body_bytes))
            endpoint.signature.check(arguments)
            self.limiter.acquire()
        except CallError as error:
            await send_json(send, error.status, error_body(str(error), error.kind))
            return
        except ClientDisconnected:
            return
        # The call's tracing id, for call_job from inside the method (chaining.py).
        tracing = bind_tracing_id(scope)
        try:
            status, content = await self.run(endpoint, arguments)
        finally:
            reset_tracing_id(tracing)
            self.limiter.release()
        await send_json(send, status, content)

    async def run(self, endpoint: CallEndpoint, arguments: dict[str, Any]) -> tuple[int, bytes]:
        """Call the method; its JSON result (200), or the exception it raised (500), counted."""
        started = self.metrics.call_started(endpoint.path)
        try:
            if endpoint.is_async:
                result = await endpoint.method(**arguments)
            else:
                result = await self.workers.run(endpoint.method, arguments)
            content = encode_json(result)
        except Exception as error:
            logger.exception("calling %s failed", endpoint.path)
            self.metrics.call_done(endpoint.path, started, internal_error=True)
            return 500, error_body(str(error), type(error).__name__)
        self.metrics.call_done(endpoint.path, started)
        return 200, content


def find_call(interface: JobInterface, path: str) -> CallEndpoint:
    """The endpoint at ``path``, or ``NotFound`` naming the ones that the job serves."""
    try:
        return interface.calls[path]
    except KeyError:
        known = ", ".join(f"/api/v1{name}" for name in interface.calls)
        raise NotFound(f"no endpoint POST /api/v1{path}; this job serves: {known}") from None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body, refusing one longer than ``limit`` bytes (413).

    A declared ``Content-Length`` over the limit is refused before anything is read; a body
    sent in chunks is counted as it comes. A small body is one message: no joining.
    """
    for name, value in scope["headers"]:
        if name == b"content-length":
            if value.isdigit() and int(value) > limit:
                raise _too_large(limit)
            break
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        if not message.get("more_body", False):
            if not chunks:
                return chunk
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request body is longer than {limit} bytes, the limit set by JOB_MAX_BODY_BYTES"
    )


def parse_arguments(body: bytes) -> dict[str, Any]:
    """The body as a JSON object of keyword arguments; an empty body means none."""
    if not body.strip():
        return {}
    try:
        payload = json.loads(body)
    except ValueError as error:
        raise ArgumentError(f"the request body is not valid JSON: {error}") from None
    if not isinstance(payload, dict):
        raise ArgumentError(
            "the request body must be a JSON object of keyword arguments, like "
            f'{{"name": value}}; got {type(payload).__name__} instead'
        )
    return payload


async def send_json(send: Send, status: int, content: bytes) -> None:
    """Send a JSON answer, with the headers of Starlette's ``Response(media_type=...)``."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-length", str(len(content)).encode("latin-1")),
                (b"content-type", b"application/json"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})
