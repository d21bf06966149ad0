"""The far ends of the Pub benchmark: a trivial job and a stub Lifecycle.

Both are ordinary Starlette apps, started by ``run.py`` as uvicorn factories:

``job_app``
    Answers ``/pub/job/{name}/{version}/{path}`` with a small JSON object, as a job would.
``lifecycle_app``
    Answers ``GET /api/v1/auth/can-call-job/{name}/{version}/{path}`` as Lifecycle's contract
    says: 401 without ``X-Racetrack-Auth``, otherwise 200 naming the job at ``$BENCH_JOB_URL``.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def perform(request: Request) -> JSONResponse:
    return JSONResponse({"result": 42})


def job_app() -> Starlette:
    """The benchmark's job: one JSON answer on every path under its base path."""
    return Starlette(
        routes=[Route("/pub/job/{name}/{version}/{path:path}", perform, methods=["GET", "POST"])]
    )


def lifecycle_app() -> Starlette:
    """A stub of Lifecycle's ``can-call-job`` endpoint, granting every caller with a token."""
    job_url = os.environ["BENCH_JOB_URL"]

    async def can_call_job(request: Request) -> JSONResponse:
        if "x-racetrack-auth" not in request.headers:
            return JSONResponse(
                {"error": "no header X-Racetrack-Auth: not logged in", "type": "unauthenticated"},
                status_code=401,
            )
        name = request.path_params["name"]
        job = {"name": name, "version": "1.0.0", "status": "running", "internal_name": job_url}
        return JSONResponse({"job": job, "caller": "User bench"})

    return Starlette(
        routes=[Route("/api/v1/auth/can-call-job/{name}/{version}/{path:path}", can_call_job)]
    )
