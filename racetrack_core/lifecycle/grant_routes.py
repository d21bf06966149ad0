"""Routes of the Lifecycle API: grants of scopes to subjects (staff), and the caller's own.

A grant gives a subject (a user, an ESC or a job family) one scope on every job, on one
family, on one version of it, or on the endpoints under a path prefix of it. The subject and
the family must exist when the grant is made.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from racetrack_core.auth import Caller
from racetrack_core.lifecycle import answers, audit, bodies
from racetrack_core.lifecycle.audit import EventKind
from racetrack_core.lifecycle.consumer_routes import find_consumer
from racetrack_core.lifecycle.context import caller_of, service_of
from racetrack_core.lifecycle.deploy_routes import read_json_body
from racetrack_core.lifecycle.openapi import schemas
from racetrack_core.lifecycle.permissions import (
    authorize_admin,
    find_grant,
    grant,
    grants_of,
    permission_dto,
    subject_label,
)
from racetrack_core.lifecycle.responses import BadRequest, JSONAnswer, NotFound
from racetrack_core.storage.models import JobFamily, Permission, Scope, SubjectKind, User

SCOPES = ", ".join(scope.value for scope in Scope)
KINDS = ", ".join(kind.value for kind in SubjectKind)


@schemas(query=bodies.GrantsQuery, answer=list[answers.GrantRecord])
def list_grants(request: Request) -> JSONAnswer:
    """Grants, filtered by ``subject_kind``, ``subject_name`` and ``job_family`` (staff)."""
    caller = caller_of(request)
    params = request.query_params
    with Session(service_of(request).engine) as session:
        authorize_admin(session, caller)
        query = select(Permission)
        if params.get("subject_kind"):
            query = query.where(Permission.subject_kind == params["subject_kind"])
        if params.get("subject_name"):
            query = query.where(Permission.subject_name == params["subject_name"])
        if params.get("job_family"):
            query = query.where(Permission.job_family == params["job_family"])
        query = query.order_by(
            col(Permission.subject_kind), col(Permission.subject_name), col(Permission.created_at)
        )
        return JSONAnswer([permission_dto(row) for row in session.exec(query)])


@schemas(answer=list[answers.GrantRecord])
def my_grants(request: Request) -> JSONAnswer:
    """The caller's own grants."""
    caller = caller_of(request)
    with Session(service_of(request).engine) as session:
        return JSONAnswer([permission_dto(row) for row in grants_of(session, caller)])


@schemas(body=bodies.GrantBody, answer=answers.GrantRecord)
def create_grant(request: Request) -> JSONAnswer:
    """Grant a scope, ``{subject_kind, subject_name, scope, job_family?, job_version?,
    endpoint?}`` (staff); answers the grant (the existing one if it was granted already)."""
    caller = caller_of(request)
    with Session(service_of(request).engine) as session:
        authorize_admin(session, caller)
    body = read_json_body(request)
    return JSONAnswer(
        add_grant(
            request,
            caller,
            _text(body, "subject_kind", required=True) or "",
            _text(body, "subject_name", required=True) or "",
            _text(body, "scope", required=True) or "",
            family=_text(body, "job_family"),
            version=_text(body, "job_version"),
            endpoint=_text(body, "endpoint"),
        )
    )


def _text(body: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise BadRequest(f"field '{name}' is required")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"field '{name}' must be a string")
    return value.strip()


def add_grant(
    request: Request,
    caller: Caller,
    kind_name: str,
    subject: str,
    scope_name: str,
    *,
    family: str | None = None,
    version: str | None = None,
    endpoint: str | None = None,
) -> dict[str, Any]:
    """Check and add a grant, with its audit event; the grant's record."""
    try:
        kind = SubjectKind(kind_name)
    except ValueError:
        raise BadRequest(f"unknown subject kind '{kind_name}'. Known: {KINDS}") from None
    try:
        scope = Scope(scope_name)
    except ValueError:
        raise BadRequest(f"unknown scope '{scope_name}'. Known: {SCOPES}") from None
    if version is not None and family is None:
        raise BadRequest("a grant on a job version needs 'job_family' too")
    if endpoint is not None:
        if family is None:
            raise BadRequest("a grant on an endpoint needs 'job_family' too")
        endpoint = "/" + endpoint.strip("/")
    with Session(service_of(request).engine) as session:
        subject = _existing_subject(session, kind, subject)
        if family is not None and not _family_exists(session, family):
            raise BadRequest(
                f"no job family named {family}: deploy a job named {family} first, then grant"
            )
        existing = find_grant(
            session, kind, subject, scope, family=family, version=version, endpoint=endpoint
        )
        if existing is not None:
            return permission_dto(existing)
        permission = grant(
            session,
            kind,
            subject,
            scope,
            family=family,
            version=version,
            endpoint=endpoint,
            granted_by=caller.name,
        )
        session.flush()
        audit.record(
            session,
            EventKind.PERMISSION_GRANTED,
            caller.name,
            job_name=family,
            job_version=version,
            subject=subject_label(kind, subject),
            grant=permission_dto(permission),
        )
        session.commit()
        session.refresh(permission)
        return permission_dto(permission)


def _existing_subject(session: Session, kind: SubjectKind, name: str) -> str:
    """The subject's name as stored (an ESC may be named by its id), or BadRequest."""
    if kind == SubjectKind.USER:
        if session.exec(select(User).where(User.username == name)).first() is None:
            raise BadRequest(f"no user named {name}; see GET /api/v1/users")
        return name
    if kind == SubjectKind.ESC:
        try:
            return find_consumer(session, name).name
        except NotFound as exc:
            raise BadRequest(str(exc)) from None
    if not _family_exists(session, name):
        raise BadRequest(f"no job family named {name}: deploy a job named {name} first")
    return name


def _family_exists(session: Session, name: str) -> bool:
    return session.exec(select(JobFamily).where(JobFamily.name == name)).first() is not None


@schemas(answer=None)
def delete_grant(request: Request) -> JSONAnswer:
    """Revoke a grant by id (staff)."""
    caller = caller_of(request)
    with Session(service_of(request).engine) as session:
        authorize_admin(session, caller)
        permission = session.get(Permission, request.path_params["id"])
        if permission is None:
            raise NotFound(f"no grant with id {request.path_params['id']}; see GET /grants")
        audit.record(
            session,
            EventKind.PERMISSION_REVOKED,
            caller.name,
            job_name=permission.job_family,
            job_version=permission.job_version,
            subject=subject_label(permission.subject_kind, permission.subject_name),
            grant=permission_dto(permission),
        )
        session.delete(permission)
        session.commit()
    return JSONAnswer(None)


@schemas(answer=answers.GrantRecord, path=bodies.ScopePath)
def allow_esc(request: Request) -> JSONAnswer:
    """The original's path: grant an ESC a scope on a job family (staff)."""
    params = request.path_params
    return _allow(request, "esc", params["esc_id"], params["scope"], params["family"])


@schemas(answer=answers.GrantRecord, path=bodies.ScopePath)
def allow_job_family(request: Request) -> JSONAnswer:
    """The original's path: grant job family ``src`` a scope on family ``dst`` (staff)."""
    params = request.path_params
    return _allow(request, "job_family", params["src"], params["scope"], params["dst"])


def _allow(request: Request, kind: str, subject: str, scope: str, family: str) -> JSONAnswer:
    caller = caller_of(request)
    with Session(service_of(request).engine) as session:
        authorize_admin(session, caller)
    return JSONAnswer(add_grant(request, caller, kind, subject, scope, family=family))


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/grants", list_grants, methods=["GET"]),
        Route("/api/v1/grants", create_grant, methods=["POST"]),
        Route("/api/v1/grants/mine", my_grants, methods=["GET"]),
        Route("/api/v1/grants/{id}", delete_grant, methods=["DELETE"]),
        Route(
            "/api/v1/auth/allow/esc/{esc_id}/job/{family}/scope/{scope}",
            allow_esc,
            methods=["POST"],
        ),
        Route(
            "/api/v1/auth/allow/job_family/{src}/job/{dst}/scope/{scope}",
            allow_job_family,
            methods=["POST"],
        ),
    ]
