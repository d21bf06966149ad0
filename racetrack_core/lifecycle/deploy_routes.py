"""``POST /deploy`` and the deployment records clients poll."""

from __future__ import annotations

from typing import Any

import anyio.from_thread
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from racetrack_core.auth import Caller
from racetrack_core.lifecycle import answers, bodies
from racetrack_core.lifecycle.context import caller_of, pipeline_of, service_of
from racetrack_core.lifecycle.deployments.request import check_git_host, parse_deploy_body
from racetrack_core.lifecycle.jobs import (
    deployment_dto,
    find_deployment,
    job_dto,
)
from racetrack_core.lifecycle.openapi import schemas
from racetrack_core.lifecycle.permissions import JobFilter, authorize, grants_of, scope_filter
from racetrack_core.lifecycle.responses import (
    BadRequest,
    JSONAnswer,
    read_json_object,
)
from racetrack_core.storage.models import (
    Deployment,
    DeploymentStatus,
    Job,
    JobFamily,
    Scope,
)


@schemas(body=bodies.DeployBody, answer=answers.DeploymentStarted)
def deploy(request: Request) -> JSONAnswer:
    """Start deploying a manifest; answer ``{"id"}`` at once (poll ``GET /deploy/{id}``).

    Needs ``deploy_job`` on the job's family, or ``deploy_new_family`` for a new name.
    """
    service = service_of(request)
    pipeline = pipeline_of(request)
    caller = caller_of(request)
    body = read_json_body(request)
    deploy_request = parse_deploy_body(body, caller, service.plugins, service.settings)
    with Session(service.engine) as session:
        known = session.exec(select(JobFamily).where(JobFamily.name == deploy_request.name)).first()
        if known is None:
            authorize(session, caller, Scope.DEPLOY_NEW_FAMILY)
        else:
            authorize(
                session, caller, Scope.DEPLOY_JOB, deploy_request.name, deploy_request.version
            )
    check_git_host(deploy_request, service.settings)  # after authorizing: it resolves names
    deployment_id = pipeline.admit(deploy_request, force=bool(body.get("force")))
    pipeline.submit(deployment_id, deploy_request)
    return JSONAnswer({"id": deployment_id})


@schemas(answer=answers.DeploymentRecord)
def get_deployment(request: Request) -> JSONAnswer:
    """A deployment's status, phase (and phase history), error, warnings and, when done, job."""
    service = service_of(request)
    caller = caller_of(request)
    with Session(service.engine) as session:
        deployment = find_deployment(session, request.path_params["deployment_id"])
        _authorize_read(session, caller, deployment)
        job = None
        if deployment.status == DeploymentStatus.DONE and deployment.job_id:
            row = session.get(Job, deployment.job_id)
            if row is not None:
                job = job_dto(row, service.settings.external_pub_url)
        return JSONAnswer(deployment_dto(deployment, job))


@schemas(query=bodies.DeploymentsQuery, answer=list[answers.DeploymentRecord])
def list_deployments(request: Request) -> JSONAnswer:
    """Recent deployments the caller may see, newest first (``?limit=``, default 100).

    ``?job_name=`` keeps one job's deployments, with ``&job_version=`` one version's.
    """
    service = service_of(request)
    caller = caller_of(request)
    try:
        limit = max(1, min(int(request.query_params.get("limit", "100")), 1000))
    except ValueError:
        raise BadRequest("query parameter 'limit' must be a whole number") from None
    name = _nonempty_param(request, "job_name")
    version = _nonempty_param(request, "job_version")
    if version is not None and name is None:
        raise BadRequest(
            "query parameter 'job_version' needs 'job_name' too: give job_name and "
            "job_version, or job_name alone"
        )
    query = select(Deployment)
    if name is not None:
        query = query.where(Deployment.job_name == name)
    if version is not None:
        query = query.where(Deployment.job_version == version)
    with Session(service.engine) as session:
        readable = scope_filter(grants_of(session, caller), Scope.READ_JOB)
        rows = session.exec(query.order_by(col(Deployment.created_at).desc()).limit(limit))
        return JSONAnswer(
            [deployment_dto(row, None) for row in rows if _may_read(caller, readable, row)]
        )


@schemas(query=bodies.TailQuery, answer=answers.Logs)
def deployment_build_log(request: Request) -> JSONAnswer:
    """A deployment's build log (``?tail=N``, 0 for all)."""
    service = service_of(request)
    caller = caller_of(request)
    with Session(service.engine) as session:
        deployment = find_deployment(session, request.path_params["deployment_id"])
        _authorize_read(session, caller, deployment)
        return JSONAnswer({"logs": tail_lines(deployment.build_log, request)})


def _may_read(caller: Caller, readable: JobFilter, deployment: Deployment) -> bool:
    """Deployers see their own deployments; others need ``read_job`` on the job (``readable``,
    the caller's ``scope_filter`` for it)."""
    if caller.is_staff or (caller.kind == "user" and deployment.deployed_by == caller.name):
        return True
    return readable(deployment.job_name, deployment.job_version)


def _authorize_read(session: Session, caller: Caller, deployment: Deployment) -> None:
    readable = scope_filter(grants_of(session, caller), Scope.READ_JOB)
    if not _may_read(caller, readable, deployment):
        authorize(session, caller, Scope.READ_JOB, deployment.job_name, deployment.job_version)


def read_json_body(request: Request) -> dict[str, Any]:
    """The body of a request to a synchronous route, as a JSON object."""
    return anyio.from_thread.run(read_json_object, request)


def query_flag(request: Request, name: str, *, default: bool) -> bool:
    """A ``true``/``false`` query parameter; ``default`` when absent, BadRequest otherwise."""
    value = request.query_params.get(name)
    if value is None:
        return default
    if value not in ("true", "false"):
        raise BadRequest(f"query parameter {name!r} must be true or false, not {value!r}")
    return value == "true"


def _nonempty_param(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    if value == "":
        raise BadRequest(f"query parameter {name!r} is empty; give a value or leave it out")
    return value


def tail_lines(text: str, request: Request, default: int = 0) -> str:
    try:
        tail = int(request.query_params.get("tail", str(default)))
    except ValueError:
        raise BadRequest("query parameter 'tail' must be a whole number") from None
    if tail <= 0:
        return text
    lines = text.splitlines(keepends=True)
    return "".join(lines[-tail:])


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/deploy", deploy, methods=["POST"]),
        Route("/api/v1/deploy", list_deployments, methods=["GET"]),
        Route("/api/v1/deploy/{deployment_id}", get_deployment, methods=["GET"]),
        Route("/api/v1/deploy/{deployment_id}/build-logs", deployment_build_log, methods=["GET"]),
    ]
