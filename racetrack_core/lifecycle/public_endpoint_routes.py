"""Public endpoints: path prefixes of a job version callable without a token, once approved.

A manifest's ``public_endpoints`` become requests of that job version when it is deployed
(``deployments.records.request_public_endpoints``), inactive until an administrator (staff,
or a subject with ``call_admin_api``) approves them; Pub's permission check
(``job_routes.can_call_job``) lets calls to an approved prefix through without a token.
Approving is recorded in the audit log; revoking closes the endpoint again (within Pub's
permission cache time).
"""

from __future__ import annotations

from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from racetrack_core.lifecycle import answers, audit, bodies
from racetrack_core.lifecycle.audit import EventKind
from racetrack_core.lifecycle.context import caller_of, service_of
from racetrack_core.lifecycle.jobs import find_job
from racetrack_core.lifecycle.openapi import schemas
from racetrack_core.lifecycle.permissions import authorize, authorize_admin, authorize_family
from racetrack_core.lifecycle.responses import BadRequest, JSONAnswer, NotFound
from racetrack_core.storage.models import PublicEndpointRequest, Scope, now


def public_endpoint_dto(row: PublicEndpointRequest) -> answers.PublicEndpointRecord:
    return {
        "id": row.id,
        "job_name": row.job_name,
        "job_version": row.job_version,
        "endpoint": row.endpoint,
        "active": row.active,
        "create_time": int(row.created_at),
        "approved_by": row.approved_by,
        "approved_at": int(row.approved_at) if row.approved_at is not None else None,
    }


@schemas(answer=list[answers.PublicEndpointRecord])
def job_public_endpoints(request: Request) -> JSONAnswer:
    """The public endpoints that a job version's manifest asks for, approved or not.

    The version may be exact, ``latest`` or a pattern such as ``1.x``.
    """
    service = service_of(request)
    caller = caller_of(request)
    name, version = request.path_params["name"], request.path_params["version"]
    with Session(service.engine) as session:
        authorize_family(session, caller, Scope.READ_JOB, name)
        job = find_job(session, name, version)
        authorize(session, caller, Scope.READ_JOB, job.name, job.version)
        rows = session.exec(
            select(PublicEndpointRequest)
            .where(
                PublicEndpointRequest.job_name == job.name,
                PublicEndpointRequest.job_version == job.version,
            )
            .order_by(col(PublicEndpointRequest.endpoint))
        )
        return JSONAnswer([public_endpoint_dto(row) for row in rows])


@schemas(query=bodies.PublicEndpointsQuery, answer=list[answers.PublicEndpointRecord])
def list_public_endpoints(request: Request) -> JSONAnswer:
    """Every public endpoint request (administrators): ``?pending=true`` for those awaiting
    approval, ``?pending=false`` for the approved ones, ``?job_name=`` for one job."""
    service = service_of(request)
    caller = caller_of(request)
    query = select(PublicEndpointRequest).order_by(
        col(PublicEndpointRequest.job_name),
        col(PublicEndpointRequest.job_version),
        col(PublicEndpointRequest.endpoint),
    )
    pending = request.query_params.get("pending")
    if pending is not None:
        if pending.lower() not in ("true", "false"):
            raise BadRequest(f"query parameter 'pending' must be true or false, not '{pending}'")
        query = query.where(PublicEndpointRequest.active == (pending.lower() == "false"))
    job_name = request.query_params.get("job_name")
    if job_name:
        query = query.where(PublicEndpointRequest.job_name == job_name)
    with Session(service.engine) as session:
        authorize_admin(session, caller)
        return JSONAnswer([public_endpoint_dto(row) for row in session.exec(query)])


@schemas(answer=answers.PublicEndpointRecord)
def approve_public_endpoint(request: Request) -> JSONAnswer:
    """Open a requested endpoint to calls without a token (administrators); answers it."""
    service = service_of(request)
    caller = caller_of(request)
    with Session(service.engine) as session:
        authorize_admin(session, caller)
        row = _find(session, request.path_params["id"])
        if not row.active:
            row.active = True
            row.approved_by = caller.name
            row.approved_at = now()
            session.add(row)
            audit.record(
                session,
                EventKind.PUBLIC_ENDPOINT_APPROVED,
                caller.name,
                job_name=row.job_name,
                job_version=row.job_version,
                endpoint=row.endpoint,
            )
            session.commit()
            session.refresh(row)
        return JSONAnswer(public_endpoint_dto(row))


@schemas(answer=answers.PublicEndpointRecord)
def revoke_public_endpoint(request: Request) -> JSONAnswer:
    """Close an approved endpoint again, so that calls need a token (administrators).

    The request stays, waiting for a new approval, as long as the manifest lists it.
    """
    service = service_of(request)
    caller = caller_of(request)
    with Session(service.engine) as session:
        authorize_admin(session, caller)
        row = _find(session, request.path_params["id"])
        if row.active:
            row.active = False
            row.approved_by = None
            row.approved_at = None
            session.add(row)
            audit.record(
                session,
                EventKind.PERMISSION_REVOKED,
                caller.name,
                job_name=row.job_name,
                job_version=row.job_version,
                subject="anyone (public endpoint)",
                public_endpoint=row.endpoint,
            )
            session.commit()
            session.refresh(row)
        return JSONAnswer(public_endpoint_dto(row))


def _find(session: Session, request_id: str) -> PublicEndpointRequest:
    row = session.get(PublicEndpointRequest, request_id)
    if row is None:
        raise NotFound(
            f"no public endpoint request with id {request_id}; "
            "GET /api/v1/public-endpoints lists them"
        )
    return row


def routes() -> list[BaseRoute]:
    return [
        Route(
            "/api/v1/job/{name}/{version}/public-endpoints", job_public_endpoints, methods=["GET"]
        ),
        Route("/api/v1/public-endpoints", list_public_endpoints, methods=["GET"]),
        Route("/api/v1/public-endpoints/{id}/approve", approve_public_endpoint, methods=["POST"]),
        Route("/api/v1/public-endpoints/{id}/approve", revoke_public_endpoint, methods=["DELETE"]),
    ]
