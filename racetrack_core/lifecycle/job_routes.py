"""Job routes: list, show, logs, delete, and the permission check Pub asks for.

Redeploy and move, which rebuild a version from its kept source, are in ``rebuild_routes``.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import AsyncIterator

import anyio.to_thread
from sqlalchemy import Engine
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from racetrack_core import events, versions
from racetrack_core.access import has_dot_segment
from racetrack_core.auth import Caller
from racetrack_core.errors import RacetrackError
from racetrack_core.lifecycle import answers, audit, bodies
from racetrack_core.lifecycle.accounts import AUTH_HEADER, request_token
from racetrack_core.lifecycle.audit import EventKind
from racetrack_core.lifecycle.context import caller_of, pipeline_of, service_of
from racetrack_core.lifecycle.deploy_routes import query_flag, tail_lines
from racetrack_core.lifecycle.jobs import (
    find_job,
    job_dto,
    job_redactor,
    jobs_json,
    ongoing_deployment,
)
from racetrack_core.lifecycle.openapi import schemas
from racetrack_core.lifecycle.permissions import (
    authorize,
    authorize_family,
    family_filter,
    grants_of,
    scope_filter,
)
from racetrack_core.lifecycle.responses import (
    BadRequest,
    Conflict,
    JSONAnswer,
    NotFound,
    Unauthenticated,
)
from racetrack_core.lifecycle.service import LifecycleService
from racetrack_core.redaction import Redactor
from racetrack_core.storage.models import (
    AuthToken,
    Deployment,
    Job,
    JobFamily,
    JobStatus,
    PublicEndpointRequest,
    Scope,
    SubjectKind,
)


def readable_job(session: Session, caller: Caller, request: Request) -> Job:
    """The job the path names, if the caller may read it (403 before any lookup otherwise)."""
    name, version = request.path_params["name"], request.path_params["version"]
    authorize_family(session, caller, Scope.READ_JOB, name)
    job = find_job(session, name, version)
    authorize(session, caller, Scope.READ_JOB, job.name, job.version)
    return job


@schemas(query=bodies.JobsQuery, answer=list[answers.JobRecord])
def list_jobs(request: Request) -> Response:
    """Every job the caller may read, most recently updated first.

    ``?manifest=false`` leaves each record's ``manifest`` and ``manifest_yaml`` out.
    """
    service = service_of(request)
    caller = caller_of(request)
    with_manifest = query_flag(request, "manifest", default=True)
    with Session(service.engine) as session:
        readable = scope_filter(grants_of(session, caller), Scope.READ_JOB)
        rows = session.exec(
            select(Job).order_by(col(Job.updated_at).desc(), col(Job.name), col(Job.version))
        )
        body = jobs_json(
            (row for row in rows if caller.is_staff or readable(row.name, row.version)),
            service.settings.external_pub_url,
            manifest=with_manifest,
        )
    return Response(body, media_type=JSONAnswer.media_type)


@schemas(answer=list[answers.FamilyRecord])
def list_families(request: Request) -> JSONAnswer:
    """Every family, by name, that the caller holds ``read_job`` on (on every job, on the
    family, or on a version or endpoint of it)."""
    service = service_of(request)
    caller = caller_of(request)
    with Session(service.engine) as session:
        readable = family_filter(grants_of(session, caller), Scope.READ_JOB)
        rows = session.exec(select(JobFamily).order_by(col(JobFamily.name)))
        return JSONAnswer(
            [
                {"id": row.id, "name": row.name}
                for row in rows
                if caller.is_staff or readable(row.name)
            ]
        )


@schemas(answer=answers.JobRecord)
def get_job(request: Request) -> JSONAnswer:
    """One job; the version may be exact, ``latest`` or a pattern such as ``1.x``."""
    service = service_of(request)
    caller = caller_of(request)
    with Session(service.engine) as session:
        job = readable_job(session, caller, request)
        return JSONAnswer(job_dto(job, service.settings.external_pub_url))


@schemas(query=bodies.TailQuery, answer=answers.Logs)
def job_logs(request: Request) -> JSONAnswer:
    """The job's recent output (``?tail=N``, default 20; 0 for all)."""
    service = service_of(request)
    caller = caller_of(request)
    with Session(service.engine) as session:
        job = readable_job(session, caller, request)
        name, version, target = job.name, job.version, job.infrastructure_target
        redact = job_redactor(service.secrets, job)
    text = service.driver(target).logs(name, version, tail=0)
    return JSONAnswer({"logs": redact(tail_lines(text, request, default=20))})


@schemas(query=bodies.TailQuery, answer={"type": "string"}, answer_media="text/plain")
async def follow_job_logs(request: Request) -> Response:
    """The job's output as it is written: the last ``tail`` lines (default 20), then each new
    line, as ``text/plain``, until the client goes away."""
    service = service_of(request)
    try:
        tail = int(request.query_params.get("tail", "20"))
    except ValueError:
        raise BadRequest("query parameter 'tail' must be a whole number") from None

    def look_up() -> tuple[str, str, str, Redactor]:
        caller = caller_of(request)
        with Session(service.engine) as session:
            job = readable_job(session, caller, request)
            redactor = job_redactor(service.secrets, job)
            return job.name, job.version, job.infrastructure_target, redactor

    name, version, target, redact = await anyio.to_thread.run_sync(look_up)
    driver = service.driver(target)
    stop = threading.Event()
    lines: asyncio.Queue[str | None] = asyncio.Queue(maxsize=1000)
    loop = asyncio.get_running_loop()

    def hand_over(line: str | None) -> bool:
        """Queue a line for the client; False once the client has gone away."""
        queued = asyncio.run_coroutine_threadsafe(lines.put(line), loop)
        while not stop.is_set():
            try:
                queued.result(timeout=0.5)
                return True
            except TimeoutError:
                continue
        queued.cancel()
        return False

    def pump() -> None:
        for line in driver.follow_logs(name, version, tail=tail, stop=stop):
            if not hand_over(redact(line)):
                return
        hand_over(None)

    async def stream() -> AsyncIterator[str]:
        reader = asyncio.create_task(anyio.to_thread.run_sync(pump))
        try:
            while (line := await lines.get()) is not None:
                yield line + "\n"
        finally:
            stop.set()
            reader.cancel()

    return StreamingResponse(stream(), media_type="text/plain; charset=utf-8")


@schemas(query=bodies.TailQuery, answer=answers.Logs)
def job_build_logs(request: Request) -> JSONAnswer:
    """The build log of the deployment that produced the job (``?tail=N``, 0 for all)."""
    service = service_of(request)
    caller = caller_of(request)
    with Session(service.engine) as session:
        job = readable_job(session, caller, request)
        deployment = None
        if job.deployment_id:
            deployment = session.get(Deployment, job.deployment_id)
        if deployment is None:
            deployment = session.exec(
                select(Deployment)
                .where(Deployment.job_name == job.name, Deployment.job_version == job.version)
                .order_by(col(Deployment.created_at).desc())
            ).first()
        text = deployment.build_log if deployment else ""
    return JSONAnswer({"logs": tail_lines(text, request)})


#: The answer to a delete that another delete of the same job overtook.
DELETED_MEANWHILE = "job {name} {version} was deleted by another request meanwhile"


@schemas(answer=None)
def delete_job(request: Request) -> JSONAnswer:
    """Stop a job version and remove its files and its record (exact version only).

    No deployment of the version is admitted while it is deleted: one sent meanwhile waits,
    then deploys it anew (admitted during the target's stop, it was left running with no
    record)."""
    service = service_of(request)
    caller = caller_of(request)
    name, version = request.path_params["name"], request.path_params["version"]
    with Session(service.engine) as session:
        authorize_family(session, caller, Scope.DELETE_JOB, name)
        job = session.exec(select(Job).where(Job.name == name, Job.version == version)).first()
        if job is None:
            find_job(session, name, "latest")  # "no job named X" when the family is unknown
            raise NotFound(f"job {name} has no version {version}; give the exact version")
        authorize(session, caller, Scope.DELETE_JOB, name, version)
    with pipeline_of(request).holding_version(name, version):
        with Session(service.engine) as session:
            job = session.exec(select(Job).where(Job.name == name, Job.version == version)).first()
            if job is None:
                raise NotFound(DELETED_MEANWHILE.format(name=name, version=version))
            if ongoing_deployment(session, name, version) is not None:
                raise Conflict(f"job {name} {version} is being deployed right now; try again after")
            dto = job_dto(job, service.settings.external_pub_url)
            target = job.infrastructure_target
        service.driver(target).delete(name, version)
        _remove_job_record(service.engine, caller.name, name, version)
        shutil.rmtree(service.jobs_dir / name / version, ignore_errors=True)
    events.notify_job_deleted(service.plugins, dto, caller.name)
    return JSONAnswer(None)


def _remove_job_record(engine: Engine, deleted_by: str, name: str, version: str) -> None:
    """Remove a job version's record and its public endpoint requests, keeping its
    deployments; revoke the family's token with its last version."""
    with Session(engine) as session:
        # Locked (on PostgreSQL): a second delete of the job waits here, then finds it gone.
        job = session.exec(
            select(Job).where(Job.name == name, Job.version == version).with_for_update()
        ).first()
        if job is None:
            raise NotFound(DELETED_MEANWHILE.format(name=name, version=version))
        for deployment in session.exec(select(Deployment).where(Deployment.job_id == job.id)):
            deployment.job_id = None
            session.add(deployment)
        session.delete(job)
        for public in session.exec(
            select(PublicEndpointRequest).where(
                PublicEndpointRequest.job_name == name, PublicEndpointRequest.job_version == version
            )
        ):
            session.delete(public)
        audit.record(session, EventKind.JOB_DELETED, deleted_by, job_name=name, job_version=version)
        try:
            session.flush()
        except StaleDataError:  # SQLite: the other delete wrote first
            session.rollback()
            raise NotFound(DELETED_MEANWHILE.format(name=name, version=version)) from None
        if session.exec(select(Job).where(Job.name == name)).first() is None:
            # The family's last version is gone: its own token must not outlive it.
            for token in session.exec(
                select(AuthToken).where(
                    AuthToken.subject_kind == SubjectKind.JOB_FAMILY,
                    AuthToken.subject_name == name,
                    AuthToken.revoked_at == None,  # noqa: E711
                )
            ):
                token.revoked_at = time.time()
                session.add(token)
        session.commit()


#: Job paths anyone may call: the runtime contract's probes.
OPEN_PATHS = ("live", "ready", "health")


@schemas(answer=answers.CallPermission)
def can_call_job(request: Request) -> JSONAnswer:
    """Pub's question: may this caller call this job path? Answers the resolved job, the
    caller, and whether the job's ``/docs`` is Racetrack's own Swagger page (``docs_page``,
    from its job type: Pub sandboxes every other page a job serves).

    Needs ``call_job`` on the job (and endpoint). Without a token, only the job's probes and
    its approved public endpoints may be called.
    """
    service = service_of(request)
    name, version = request.path_params["name"], request.path_params["version"]
    path = request.path_params["path"].strip("/")
    caller = caller_of(request) if request_token(request) is not None else None
    with Session(service.engine) as session:
        if not _is_open(session, name, version, path):
            _require_call_permission(session, caller, name)
        job = find_job(session, name, version)
        if not _is_open(session, job.name, job.version, path):
            # Checked again on the resolved version: an endpoint approved on one version
            # does not open it on another that a pattern such as latest resolves to.
            _require_call_permission(session, caller, job.name)
            assert caller is not None
            authorize(session, caller, Scope.CALL_JOB, job.name, job.version, path)
        if job.status == JobStatus.STARTING or not job.internal_name:
            raise NotFound(f"job {job.name} {job.version} is not running yet")
        dto = job_dto(job, service.settings.external_pub_url)
        job_type = job.job_type
    return JSONAnswer(
        {
            "job": dto,
            "caller": caller.label if caller else None,
            "docs_page": _serves_docs_page(service, job_type),
        }
    )


def _serves_docs_page(service: LifecycleService, job_type: str) -> bool:
    """Whether jobs of ``job_type`` (``name:version``) answer ``/docs`` with Racetrack's own
    Swagger page; False for a job type no longer installed."""
    try:
        return service.plugins.job_types.resolve(job_type).docs_page
    except RacetrackError:
        return False


def _require_call_permission(session: Session, caller: Caller | None, family: str) -> None:
    if caller is None:
        raise Unauthenticated(f"no header {AUTH_HEADER}: not logged in")
    authorize_family(session, caller, Scope.CALL_JOB, family)


def _is_open(session: Session, name: str, version: str, path: str) -> bool:
    """A probe path, or an approved public endpoint of this job version (or, for a version
    pattern, of any version: the exact check follows once the version is resolved)."""
    if path in OPEN_PATHS:
        return True
    query = select(PublicEndpointRequest).where(
        PublicEndpointRequest.job_name == name,
        PublicEndpointRequest.active == True,  # noqa: E712
    )
    if versions.is_semver(version):
        query = query.where(PublicEndpointRequest.job_version == version)
    if has_dot_segment(path):
        return False  # "public/../private" is not under "public"
    for request in session.exec(query):
        prefix = request.endpoint.strip("/")
        if path == prefix or path.startswith(prefix + "/"):
            return True
    return False


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/job", list_jobs, methods=["GET"]),
        Route("/api/v1/job_family", list_families, methods=["GET"]),
        Route("/api/v1/job/{name}/{version}", get_job, methods=["GET"]),
        Route("/api/v1/job/{name}/{version}", delete_job, methods=["DELETE"]),
        Route("/api/v1/job/{name}/{version}/logs", job_logs, methods=["GET"]),
        Route("/api/v1/job/{name}/{version}/logs/stream", follow_job_logs, methods=["GET"]),
        Route("/api/v1/job/{name}/{version}/build-logs", job_build_logs, methods=["GET"]),
        Route(
            "/api/v1/auth/can-call-job/{name}/{version}/{path:path}",
            can_call_job,
            methods=["GET"],
        ),
    ]
