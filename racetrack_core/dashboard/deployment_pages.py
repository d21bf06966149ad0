"""Deployment pages: recent deployments, and one deployment's phases and build log, followed
live while it runs."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from racetrack_core.dashboard.pages import Viewer, dashboard_of, page, render, url

STATUS_LABELS = {"in_progress": "in progress", "done": "done", "failed": "failed"}
#: Deployments listed on the Deployments page.
RECENT = 100


def with_duration(deployment: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """The deployment with ``duration``: until it finished, or until now while it runs."""
    end = deployment.get("finish_time") or (now or time.time())
    deployment["duration"] = max(0.0, float(end) - float(deployment["create_time"]))
    return deployment


def phases_of(deployment: dict[str, Any]) -> list[dict[str, str]]:
    """Each phase with when it began, counted from the deployment's start."""
    start = float(deployment["create_time"])
    return [
        {"phase": str(step["phase"]), "at": f"+{max(0.0, float(step['time']) - start):.1f} s"}
        for step in deployment.get("phases") or []
    ]


async def _deployment(request: Request, viewer: Viewer) -> tuple[dict[str, Any], str]:
    api = dashboard_of(request).api
    ident = quote(request.path_params["id"], safe="")
    deployment = await api.call("GET", f"/deploy/{ident}", viewer.token)
    logs = await api.call("GET", f"/deploy/{ident}/build-logs", viewer.token, params={"tail": "0"})
    return with_duration(deployment), str(logs.get("logs") or "")


@page()
async def deployments(request: Request, viewer: Viewer) -> Response:
    recent = await dashboard_of(request).api.call(
        "GET", "/deploy", viewer.token, params={"limit": str(RECENT)}
    )
    now = time.time()
    return render(
        request,
        "deployments.html",
        viewer,
        section="deployments",
        deployments=[with_duration(deployment, now) for deployment in recent],
    )


@page()
async def deployment_detail(request: Request, viewer: Viewer) -> Response:
    deployment, build_log = await _deployment(request, viewer)
    return render(
        request,
        "deployment.html",
        viewer,
        section="deployments",
        deployment=deployment,
        phases=phases_of(deployment),
        build_log=build_log,
        status_label=STATUS_LABELS.get(deployment["status"], deployment["status"]),
        status_url=url(f"deployments/{quote(str(deployment['id']), safe='')}/status"),
        job_url=_job_page(deployment),
    )


@page()
async def deployment_status(request: Request, viewer: Viewer) -> Response:
    """What the detail page refreshes while the deployment runs (JSON)."""
    deployment, build_log = await _deployment(request, viewer)
    return JSONResponse(
        {
            "status": deployment["status"],
            "status_label": STATUS_LABELS.get(deployment["status"], deployment["status"]),
            "phase": deployment["phase"],
            "phases": phases_of(deployment),
            "error": deployment["error"],
            "build_log": build_log,
            "finished": deployment["status"] != "in_progress",
            "job_url": _job_page(deployment),
        }
    )


def _job_page(deployment: dict[str, Any]) -> str:
    if deployment["status"] != "done":
        return ""
    name = quote(str(deployment["job_name"]), safe="")
    version = quote(str(deployment["job_version"]), safe="")
    return url(f"jobs/{name}/{version}")


def routes() -> list[BaseRoute]:
    return [
        Route("/dashboard/deployments", deployments, methods=["GET"]),
        Route("/dashboard/deployments/{id}", deployment_detail, methods=["GET"]),
        Route("/dashboard/deployments/{id}/status", deployment_status, methods=["GET"]),
    ]
