"""Deployments of a job version from the source the server kept: redeploy and move.

Each deployment keeps the job's fetched source in its folder (``Job.workspace``), so a
version can be built again without its git remote, credentials or uploaded context: a
redeploy rebuilds it where it runs, a move rebuilds it on another infrastructure target. Both
go through the pipeline as a forced deployment by the caller, with the runtime secrets the
job was sealed with. Build secrets are not kept, so a job whose build needs them must be
deployed again from its source.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from racetrack_core.auth import Caller
from racetrack_core.errors import ManifestError
from racetrack_core.lifecycle import answers, audit, bodies
from racetrack_core.lifecycle.audit import EventKind
from racetrack_core.lifecycle.context import caller_of, pipeline_of, service_of
from racetrack_core.lifecycle.deploy_routes import read_json_body
from racetrack_core.lifecycle.deployments.environment import open_job_secrets
from racetrack_core.lifecycle.deployments.request import DeployRequest
from racetrack_core.lifecycle.jobs import (
    deployment_dto,
    find_deployment,
    find_exact_job,
    job_dto,
)
from racetrack_core.lifecycle.openapi import schemas
from racetrack_core.lifecycle.permissions import authorize, authorize_family
from racetrack_core.lifecycle.responses import BadRequest, Conflict, JSONAnswer
from racetrack_core.lifecycle.service import LifecycleService
from racetrack_core.manifest import Manifest
from racetrack_core.schema import validate_manifest
from racetrack_core.storage.models import DeploymentStatus, Job, Scope


@schemas(answer=answers.DeploymentRecord, status=202)
def redeploy_job(request: Request) -> JSONAnswer:
    """Rebuild a job version from its kept source where it runs; answer 202 at once.

    The answer is the new deployment's record, to follow with ``GET /deploy/{id}``. The
    version keeps serving until the rebuilt one is ready, and keeps serving if it fails.
    """
    service = service_of(request)
    caller = caller_of(request)
    name, version = request.path_params["name"], request.path_params["version"]
    with Session(service.engine) as session:
        job = deployable_job(session, caller, name, version)
        redeploy = rebuild_request(
            service, job, caller, target=job.infrastructure_target, action="redeployed"
        )
    pipeline = pipeline_of(request)
    deployment_id = pipeline.admit(redeploy, force=True)
    pipeline.submit(deployment_id, redeploy)
    with Session(service.engine) as session:
        deployment = find_deployment(session, deployment_id)
        return JSONAnswer(deployment_dto(deployment, None), status_code=202)


@schemas(body=bodies.MoveBody, answer=None)
def move_job(request: Request) -> JSONAnswer:
    """Move a job version to another infrastructure target; answer once it serves there.

    The move is a deployment of the job's own kept source onto the new target (build,
    start, wait, switch traffic) followed by the removal of the replica on the former one, so
    the job keeps answering throughout. A failed move leaves the job where it was.
    """
    service = service_of(request)
    caller = caller_of(request)
    body = read_json_body(request)
    target = body.get("infrastructure_target")
    if not isinstance(target, str) or not target:
        raise BadRequest("field 'infrastructure_target' is required: the target to move to")
    names = service.plugins.infrastructure_targets.names()
    if target not in names:
        raise BadRequest(
            f"unknown infrastructure target '{target}'. Installed: {', '.join(names) or 'none'}"
        )
    name, version = request.path_params["name"], request.path_params["version"]
    with Session(service.engine) as session:
        job = deployable_job(session, caller, name, version)
        if job.infrastructure_target == target:
            raise BadRequest(f"job {name} {version} already runs on target '{target}'")
        move = rebuild_request(service, job, caller, target=target, action=f"moved to '{target}'")
    pipeline = pipeline_of(request)
    deployment_id = pipeline.admit(move, force=True)
    pipeline.run(deployment_id, move)
    with Session(service.engine) as session:
        deployment = find_deployment(session, deployment_id)
        if deployment.status != DeploymentStatus.DONE:
            raise Conflict(f"moving job {name} {version} to '{target}' failed: {deployment.error}")
        audit.record(
            session,
            EventKind.JOB_MOVED,
            caller.name,
            job_name=name,
            job_version=version,
            infrastructure_target=target,
        )
        session.commit()
    return JSONAnswer(None)


def deployable_job(session: Session, caller: Caller, name: str, version: str) -> Job:
    """The job at exactly this version, if the caller may deploy it (403 before any lookup,
    so that a caller without access learns nothing about which jobs exist)."""
    authorize_family(session, caller, Scope.DEPLOY_JOB, name)
    job = find_exact_job(session, name, version)
    authorize(session, caller, Scope.DEPLOY_JOB, name, version)
    return job


def rebuild_request(
    service: LifecycleService, job: Job, caller: Caller, *, target: str, action: str
) -> DeployRequest:
    """A deployment of ``job`` from its kept source onto ``target``, by ``caller``.

    ``action`` completes "job X V cannot be ..." in the errors: 409 when the source is no
    longer on the server, 400 when the target or the manifest no longer fits the installed
    plugins.
    """
    refused = f"job {job.name} {job.version} cannot be {action}"
    targets = service.plugins.infrastructure_targets.names()
    if target not in targets:
        raise BadRequest(
            f"{refused}: infrastructure target '{target}' is not installed "
            f"(installed: {', '.join(targets) or 'none'}); install the target's plugin"
        )
    if not job.workspace or not Path(job.workspace).is_dir():
        moved = target != job.infrastructure_target
        where = f" with infrastructure_target: {target}" if moved else ""
        raise Conflict(
            f"{refused}: its source is no longer on the server; "
            f"deploy it again from its source (racetrack deploy{where})"
        )
    manifest: dict[str, Any] = job_dto(job, "")["manifest"] or {}
    if target != job.infrastructure_target:
        manifest = {**manifest, "infrastructure_target": target}
    try:
        validated = validate_manifest(
            Manifest(data=manifest), service.plugins, default_target=target
        )
    except ManifestError as exc:
        raise BadRequest(f"{refused} with the plugins installed now: {exc}") from None
    return DeployRequest(
        manifest=validated.data,
        job_type=validated.job_type,
        target=target,
        deployed_by=caller.name,
        warnings=list(validated.warnings),
        runtime_env_secrets=open_job_secrets(service.secrets, job.sealed_secrets).runtime_env,
        caller=caller,
        source_dir=Path(job.workspace),
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/job/{name}/{version}/redeploy", redeploy_job, methods=["POST"]),
        Route("/api/v1/job/{name}/{version}/move", move_job, methods=["POST"]),
    ]
