"""Job pages: every job the person may read, grouped by family, with details, logs, and the
Open, Redeploy and Delete actions for those allowed to use them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from racetrack_core.access import Grant, Scope, allows
from racetrack_core.dashboard.api import LifecycleError
from racetrack_core.dashboard.deployment_pages import with_duration
from racetrack_core.dashboard.pages import (
    Pager,
    Viewer,
    act,
    api,
    checked_form,
    dashboard_of,
    page,
    render,
    url,
)
from racetrack_core.wire import JobStatus

STATUSES = tuple(status.value for status in JobStatus)
SORTS = {
    "updated": "Most recently updated",
    "name": "Name",
    "status": "Status (problems first)",
}
#: Families on one page of the jobs list.
FAMILIES_PER_PAGE = 50
#: Deployments of a version listed on its page.
JOB_DEPLOYMENTS = 10
#: Lines of a job's log shown before following it.
LOG_TAIL = 200


class Rights:
    """What the viewer may do to which job, from their own grants (staff may do anything)."""

    def __init__(self, viewer: Viewer, grants: Iterable[dict[str, Any]]) -> None:
        self.staff = viewer.is_staff
        self.grants = [
            Grant(
                scope=str(grant["scope"]),
                job_family=grant.get("job_family"),
                job_version=grant.get("job_version"),
                endpoint=grant.get("endpoint"),
            )
            for grant in grants
        ]

    def may(self, scope: Scope, job: dict[str, Any]) -> bool:
        return self.staff or allows(self.grants, scope, job["name"], job["version"])

    def annotate(self, job: dict[str, Any]) -> dict[str, Any]:
        job["may_deploy"] = self.may(Scope.DEPLOY_JOB, job)
        job["may_delete"] = self.may(Scope.DELETE_JOB, job)
        return job


async def rights_of(request: Request, viewer: Viewer) -> Rights:
    grants = [] if viewer.is_staff else await api(request, viewer, "GET", "/grants/mine")
    return Rights(viewer, grants)


def job_path(name: str, version: str) -> str:
    return f"/job/{quote(name, safe='')}/{quote(version, safe='')}"


def page_path(name: str, version: str, action: str = "") -> str:
    base = url(f"jobs/{quote(name, safe='')}/{quote(version, safe='')}")
    return f"{base}/{action}" if action else base


@page()
async def jobs(request: Request, viewer: Viewer) -> Response:
    """The jobs list, a page of families at a time: ``?q=`` filters by name, version, owner,
    deployer or job type; ``?status=`` by status; ``?sort=`` orders the families."""
    params = request.query_params
    query = params.get("q", "").strip()
    status = params.get("status", "")
    status = status if status in STATUSES else ""
    sort = params.get("sort", "updated")
    sort = sort if sort in SORTS else "updated"
    page_number = params.get("page", "1")
    asked = {
        "q": query,
        "status": status,
        "sort": sort,
        "page": page_number if page_number.isdigit() and int(page_number) > 0 else "1",
        "per_page": str(FAMILIES_PER_PAGE),
    }
    listing = await api(request, viewer, "GET", "/job_family/jobs", params=asked)
    return render(
        request,
        "jobs.html",
        viewer,
        section="jobs",
        families=listing["families"],
        matching_families=listing["matching_families"],
        total=listing["total"],
        matching=listing["matching"],
        query=query,
        status=status,
        statuses=STATUSES,
        sort=sort,
        sorts=SORTS,
        pager=Pager(
            listing["page"],
            listing["pages"],
            lambda n: (
                url("jobs")
                + "?"
                + urlencode({"q": query, "status": status, "sort": sort, "page": n})
            ),
        ),
    )


@page()
async def job_detail(request: Request, viewer: Viewer) -> Response:
    name, version = request.path_params["name"], request.path_params["version"]
    job, rights, deployments = await asyncio.gather(
        api(request, viewer, "GET", job_path(name, version)),
        rights_of(request, viewer),
        api(
            request,
            viewer,
            "GET",
            "/deploy",
            params={"job_name": name, "job_version": version, "limit": str(JOB_DEPLOYMENTS)},
        ),
    )
    rights.annotate(job)
    return render(
        request,
        "job.html",
        viewer,
        section="jobs",
        job=job,
        deployments=[with_duration(deployment) for deployment in deployments],
        page_path=page_path,
    )


@page()
async def job_logs(request: Request, viewer: Viewer) -> Response:
    name, version = request.path_params["name"], request.path_params["version"]
    job, logs = await asyncio.gather(
        api(request, viewer, "GET", job_path(name, version)),
        api(
            request,
            viewer,
            "GET",
            job_path(name, version) + "/logs",
            params={"tail": str(LOG_TAIL)},
        ),
    )
    return render(
        request,
        "job_logs.html",
        viewer,
        section="jobs",
        job=job,
        logs=logs["logs"],
        tail=LOG_TAIL,
        stream_url=page_path(job["name"], job["version"], "logs/stream"),
        page_path=page_path,
    )


@page()
async def follow_logs(request: Request, viewer: Viewer) -> Response:
    """The job's log as it is written (text), relayed from Lifecycle for the live view."""
    name, version = request.path_params["name"], request.path_params["version"]
    # Asked first, so that a refusal is an error answer and not an empty stream.
    await api(request, viewer, "GET", job_path(name, version))
    client = dashboard_of(request).api

    async def relay() -> AsyncIterator[bytes]:
        try:
            async with client.stream(
                job_path(name, version) + "/logs/stream", viewer.token, {"tail": str(LOG_TAIL)}
            ) as answer:
                if answer.status_code != 200:
                    yield f"(the log cannot be followed: {answer.status_code})\n".encode()
                    return
                async for chunk in answer.aiter_bytes():
                    yield chunk
        except LifecycleError as exc:
            yield f"({exc.message})\n".encode()

    return StreamingResponse(
        relay(),
        media_type="text/plain; charset=utf-8",
        headers={"X-Accel-Buffering": "no"},
    )


@page()
async def build_logs(request: Request, viewer: Viewer) -> Response:
    name, version = request.path_params["name"], request.path_params["version"]
    job, logs = await asyncio.gather(
        api(request, viewer, "GET", job_path(name, version)),
        api(request, viewer, "GET", job_path(name, version) + "/build-logs", params={"tail": "0"}),
    )
    return render(
        request,
        "build_logs.html",
        viewer,
        section="jobs",
        job=job,
        logs=logs["logs"],
        page_path=page_path,
    )


@page()
async def redeploy(request: Request, viewer: Viewer) -> Response:
    await checked_form(request)
    name, version = request.path_params["name"], request.path_params["version"]
    return await act(
        request,
        viewer,
        page_path(name, version),
        "POST",
        job_path(name, version) + "/redeploy",
        f"Redeploying {name} {version}: the build starts from the job's own source.",
        onward=lambda deployment: url(f"deployments/{quote(str(deployment['id']), safe='')}"),
    )


@page()
async def delete_page(request: Request, viewer: Viewer) -> Response:
    name, version = request.path_params["name"], request.path_params["version"]
    job = await api(request, viewer, "GET", job_path(name, version))
    return render(request, "job_delete.html", viewer, section="jobs", job=job, page_path=page_path)


@page()
async def delete(request: Request, viewer: Viewer) -> Response:
    await checked_form(request)
    name, version = request.path_params["name"], request.path_params["version"]
    return await act(
        request,
        viewer,
        page_path(name, version),
        "DELETE",
        job_path(name, version),
        f"Deleted job {name} version {version}.",
        onward=url("jobs"),
    )


def routes() -> list[BaseRoute]:
    job = "/dashboard/jobs/{name}/{version}"
    return [
        Route("/dashboard/jobs", jobs, methods=["GET"]),
        Route(job, job_detail, methods=["GET"]),
        Route(job + "/logs", job_logs, methods=["GET"]),
        Route(job + "/logs/stream", follow_logs, methods=["GET"]),
        Route(job + "/build-logs", build_logs, methods=["GET"]),
        Route(job + "/redeploy", redeploy, methods=["POST"]),
        Route(job + "/delete", delete_page, methods=["GET"]),
        Route(job + "/delete", delete, methods=["POST"]),
    ]
