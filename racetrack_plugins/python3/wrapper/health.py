"""The runtime contract's probes: ``GET /live``, ``GET /ready`` and ``GET /health``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .runtime import JobRuntime
from .settings import WrapperSettings


def _context(request: Request) -> tuple[JobRuntime, WrapperSettings]:
    return request.app.state.runtime, request.app.state.settings


async def live(request: Request) -> JSONResponse:
    runtime, settings = _context(request)
    body: dict[str, object] = {
        "live": runtime.live,
        "deployment_timestamp": settings.deployment_timestamp,
    }
    if runtime.error is not None:
        body["error"] = runtime.error
        return JSONResponse(body, status_code=500)
    return JSONResponse(body)


async def ready(request: Request) -> JSONResponse:
    runtime, _ = _context(request)
    return JSONResponse({"ready": runtime.ready}, status_code=200 if runtime.ready else 503)


async def health(request: Request) -> JSONResponse:
    runtime, settings = _context(request)
    passing = runtime.live and runtime.ready
    body: dict[str, object] = {
        "service": "job",
        "job_name": settings.job_name,
        "job_version": settings.job_version,
        "live": runtime.live,
        "ready": runtime.ready,
        "status": "pass" if passing else "fail",
        "deployment_timestamp": settings.deployment_timestamp,
    }
    if settings.replica:  # tells the instances of a replicated job apart
        body["replica"] = settings.replica
    if runtime.error is not None:
        body["error"] = runtime.error
    return JSONResponse(body, status_code=200 if passing else 503)


routes = [
    Route("/live", live, methods=["GET"]),
    Route("/ready", ready, methods=["GET"]),
    Route("/health", health, methods=["GET"]),
]
