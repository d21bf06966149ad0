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
import urllib.parse
from typing import TYPE_CHECKING, Any, Protocol

from starlette.types import Receive, Scope, Send

from .auxiliary import MISSING, find_route
from .chaining import bind_tracing_id, reset_tracing_id
from .context import RequestContext
from .encoding import encode_json, error_body
from .entrypoint import CallEndpoint, JobInterface
from .errors import ArgumentError, CallError, NotFound, PayloadTooLarge
from .limiter import CallLimiter
from .metrics import CallMetrics
from .workers import WorkerThreads

if TYPE_CHECKING:
    from .runtime import JobRuntime

logger = logging.getLogger("racetrack.job")


class ClientDisconnected(Exception):
    """The client went away before its body was read: there is no one to answer."""


class Runnable(Protocol):
    """What ``run`` needs of an endpoint: ``CallEndpoint`` or ``auxiliary.RouteEndpoint``."""

    @property
    def path(self) -> str: ...
    @property
    def method(self) -> Any: ...
    @property
    def is_async(self) -> bool: ...


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
        context: RequestContext,
    ) -> None:
        self.runtime = runtime
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.limiter = limiter
        self.workers = workers
        self.context = context

    async def serve(self, path: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a call to the endpoint at ``path`` (``/perform``, without ``/api/v1``).

        A path that no ``perform``/auxiliary endpoint has may be an ``auxiliary_endpoints_v2``
        one, whose arguments come from the path and the query too.
        """
        try:
            endpoint: Runnable
            interface = self.runtime.require_ready()
            body = await read_body(scope, receive, self.max_body_bytes)
            route = (
                find_route(interface.routes, "POST", path) if path not in interface.calls else None
            )
            if route is not None:
                endpoint = route[0]
                arguments = route[0].bind(route[1], query_of(scope), parse_json(body))
            else:
                endpoint = call = find_call(interface, path)
                arguments = parse_arguments(body)
                call.signature.check(arguments)
            await self.limiter.acquire()
        except CallError as error:
            await send_json(send, error.status, error_body(str(error), error.kind))
            return
        except ClientDisconnected:
            return
        await self.answer(endpoint, arguments, scope, send)

    async def serve_get(self, path: str, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer ``GET /api/v1{path}`` if an ``auxiliary_endpoints_v2`` route serves it."""
        routes = self.runtime.interface.routes
        if not routes or (found := find_route(routes, "GET", path)) is None:
            return False
        route, path_params = found
        try:
            arguments = route.bind(path_params, query_of(scope), MISSING)
            await self.limiter.acquire()
        except CallError as error:
            await send_json(send, error.status, error_body(str(error), error.kind))
            return True
        await self.answer(route, arguments, scope, send)
        return True

    async def answer(
        self, endpoint: Runnable, arguments: dict[str, Any], scope: Scope, send: Send
    ) -> None:
        """Run an admitted call (``limiter.acquire`` done) in the request's context; answer it."""
        # The call's tracing id, for call_job from inside the method (chaining.py).
        tracing = bind_tracing_id(scope)
        bound = self.context.bind(scope)
        try:
            status, content = await self.run(endpoint, arguments)
        finally:
            self.context.reset(bound)
            reset_tracing_id(tracing)
            self.limiter.release()
        await send_json(send, status, content)

    async def run(self, endpoint: Runnable, arguments: dict[str, Any]) -> tuple[int, bytes]:
        """Call the method; its JSON result (200), or the exception it raised, counted.

        A ``ValueError`` of the job's code is the caller's mistake (400), as in the original
        wrapper; any other exception is the job's (500).
        """
        started = self.metrics.call_started(endpoint.path)
        try:
            if endpoint.is_async:
                result = await endpoint.method(**arguments)
            else:
                result = await self.workers.run(endpoint.method, arguments)
            content = encode_json(result)
        except ValueError as error:
            logger.warning("calling %s refused: %s: %s", endpoint.path, type(error).__name__, error)
            self.metrics.call_done(endpoint.path, started, internal_error=True)
            return 400, error_body(str(error), type(error).__name__)
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


def query_of(scope: Scope) -> dict[str, str]:
    """The query string's parameters (the last value of a repeated one)."""
    raw: bytes = scope.get("query_string", b"")
    return dict(urllib.parse.parse_qsl(raw.decode("latin-1"), keep_blank_values=True))


def parse_json(body: bytes) -> Any:
    """The body's JSON value; ``auxiliary.MISSING`` for an empty body."""
    if not body.strip():
        return MISSING
    try:
        return json.loads(body)
    except ValueError as error:
        raise ArgumentError(f"the request body is not valid JSON: {error}") from None


def parse_arguments(body: bytes) -> dict[str, Any]:
    """The body as a JSON object of keyword arguments; an empty body means none."""
    payload = parse_json(body)
    if payload is MISSING:
        return {}
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
