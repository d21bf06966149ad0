"""The job's own endpoints under ``/api/v1``: perform, auxiliary calls, parameters, static files."""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import logging
from pathlib import Path
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from .entrypoint import CallEndpoint, JobInterface
from .errors import ArgumentError, CallError, PayloadTooLarge, TooManyCalls, error_response
from .metrics import CallMetrics
from .runtime import JobRuntime
from .settings import WrapperSettings
from .signature import type_name

logger = logging.getLogger("racetrack.job")


class CallLimiter:
    """Refuses a call when ``limit`` calls are already running (no queue: the caller retries)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.running = 0

    def acquire(self) -> None:
        # No await between the check and the increment: atomic on the event loop.
        if self.limit is not None and self.running >= self.limit:
            raise TooManyCalls(
                f"the job is already serving {self.running} calls, its max_concurrency; retry later"
            )
        self.running += 1

    def release(self) -> None:
        self.running -= 1


async def call_endpoint(request: Request) -> Response:
    """``POST /api/v1/{path}``: a JSON object of keyword arguments in, the JSON result out."""
    path = "/" + request.path_params["path"]
    runtime: JobRuntime = request.app.state.runtime
    settings: WrapperSettings = request.app.state.settings
    limiter: CallLimiter = request.app.state.limiter
    try:
        endpoint = _find_call(runtime.require_ready(), path)
        arguments = await read_arguments(request, settings.max_body_bytes)
        endpoint.signature.check(arguments)
        limiter.acquire()
    except CallError as error:
        return error.response()
    except LookupError as error:
        return error_response(str(error), "NotFound", 404)
    try:
        return await _run(endpoint, arguments, request.app.state.metrics)
    finally:
        limiter.release()


def _find_call(interface: JobInterface, path: str) -> CallEndpoint:
    try:
        return interface.calls[path]
    except KeyError:
        known = ", ".join(f"/api/v1{name}" for name in interface.calls)
        raise LookupError(f"no endpoint POST /api/v1{path}; this job serves: {known}") from None


async def read_arguments(request: Request, limit: int) -> dict[str, Any]:
    """Read the body as a JSON object, refusing one longer than ``limit`` bytes."""
    too_large = PayloadTooLarge(
        f"the request body is longer than {limit} bytes, the limit set by JOB_MAX_BODY_BYTES"
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
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


async def _run(endpoint: CallEndpoint, arguments: dict[str, Any], metrics: CallMetrics) -> Response:
    started = metrics.call_started(endpoint.path)
    try:
        if endpoint.is_async:
            result = await endpoint.method(**arguments)
        else:
            result = await anyio.to_thread.run_sync(functools.partial(endpoint.method, **arguments))
        content = encode_json(result)
    except Exception as error:
        logger.exception("calling %s failed", endpoint.path)
        metrics.call_done(endpoint.path, started, internal_error=True)
        return error_response(str(error), type(error).__name__, 500)
    metrics.call_done(endpoint.path, started)
    return Response(content, media_type="application/json")


def encode_json(value: Any) -> bytes:
    """Encode a method's result; dataclasses, sets, dates and ``tolist()`` arrays are converted."""
    try:
        text = json.dumps(value, default=_convert, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as error:
        raise TypeError(f"the result cannot be encoded as JSON: {error}") from None
    return text.encode()


def _convert(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset):
        return list(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if callable(getattr(value, "tolist", None)):  # numpy arrays and scalars
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


async def parameters(request: Request) -> JSONResponse:
    """``GET /api/v1/parameters``: the parameters of perform, with their types and defaults."""
    runtime: JobRuntime = request.app.state.runtime
    described = []
    for parameter in runtime.interface.perform.signature.parameters:
        entry: dict[str, Any] = {"name": parameter.name}
        if not parameter.required:
            entry["default_value"] = _jsonable(parameter.default)
        entry["type"] = type_name(parameter.annotation)
        described.append(entry)
    return JSONResponse(described)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)
    return value


async def static_file(request: Request) -> Response:
    """``GET /api/v1/{path}``: a file named by ``static_endpoints()``, or one in its directory."""
    path = "/" + request.path_params["path"]
    runtime: JobRuntime = request.app.state.runtime
    try:
        static = runtime.require_ready().static
    except CallError as error:
        return error.response()
    for prefix, endpoint in static.items():
        if path == prefix and endpoint.target.is_file():
            return FileResponse(endpoint.target, media_type=endpoint.media_type)
        if path.startswith(prefix + "/") and endpoint.target.is_dir():
            found = _file_inside(endpoint.target, path[len(prefix) + 1 :])
            if found is not None:
                return FileResponse(found, media_type=endpoint.media_type)
    return error_response(f"no static file at GET /api/v1{path}", "NotFound", 404)


def _file_inside(directory: Path, relative: str) -> Path | None:
    candidate = (directory / relative).resolve()
    if candidate.is_relative_to(directory) and candidate.is_file():
        return candidate
    return None


routes = [
    Route("/api/v1/parameters", parameters, methods=["GET"]),
    Route("/api/v1/{path:path}", call_endpoint, methods=["POST"]),
    Route("/api/v1/{path:path}", static_file, methods=["GET"]),
]
