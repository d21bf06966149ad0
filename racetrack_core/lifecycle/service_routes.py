"""Discovery, health and metrics routes of the Lifecycle API (accounts: account_routes.py)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import text
from sqlmodel import Session, select
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

import racetrack_core
from racetrack_core.lifecycle import answers
from racetrack_core.lifecycle.context import service_of
from racetrack_core.lifecycle.openapi import schemas
from racetrack_core.lifecycle.responses import JSONAnswer
from racetrack_core.storage.models import Deployment, Job

SERVICE = "lifecycle"


@schemas(answer=answers.Info)
def info(request: Request) -> JSONAnswer:
    """What a client needs to know before it logs in (no auth)."""
    settings = service_of(request).settings
    record: answers.Info = {
        "service": SERVICE,
        "version": racetrack_core.__version__,
        "git_version": racetrack_core.__version__,
        "docker_tag": None,
        "auth_required": settings.auth_required,
        "external_pub_url": settings.external_pub_url,
        "lifecycle_url": settings.external_lifecycle_url,
        "infrastructure_targets": service_of(request).plugins.infrastructure_targets.names(),
        "default_infrastructure_target": settings.infrastructure_target,
    }
    return JSONAnswer(record)


def live(_request: Request) -> JSONAnswer:
    return JSONAnswer({"service": SERVICE, "live": True})


def ready(request: Request) -> JSONAnswer:
    connected = _database_connected(request)
    return JSONAnswer(
        {"service": SERVICE, "ready": connected}, status_code=200 if connected else 503
    )


def health(request: Request) -> JSONAnswer:
    connected = _database_connected(request)
    return JSONAnswer(
        {
            "service": SERVICE,
            "live": True,
            "ready": connected,
            "database_connected": connected,
            "git_version": racetrack_core.__version__,
            "auth_required": service_of(request).settings.auth_required,
        },
        status_code=200 if connected else 503,
    )


def _database_connected(request: Request) -> bool:
    try:
        with service_of(request).engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


def metrics(request: Request) -> Response:
    """Prometheus text: jobs by status, deployments by status, service start time."""
    service = service_of(request)
    with Session(service.engine) as session:
        jobs = Counter(job.status for job in session.exec(select(Job)))
        deployments = Counter(d.status for d in session.exec(select(Deployment)))
    lines = [
        "# HELP racetrack_jobs Jobs by status.",
        "# TYPE racetrack_jobs gauge",
        *(f'racetrack_jobs{{status="{status}"}} {count}' for status, count in jobs.items()),
        "# HELP racetrack_deployments Deployments recorded, by status.",
        "# TYPE racetrack_deployments gauge",
        *(f'racetrack_deployments{{status="{s}"}} {count}' for s, count in deployments.items()),
        "# HELP racetrack_lifecycle_start_time_seconds When this Lifecycle started.",
        "# TYPE racetrack_lifecycle_start_time_seconds gauge",
        f"racetrack_lifecycle_start_time_seconds {request.app.state.started_at}",
    ]
    return PlainTextResponse(
        "\n".join(lines) + "\n", media_type="text/plain; version=0.0.4; charset=utf-8"
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/info", info, methods=["GET"]),
        Route("/live", live, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
