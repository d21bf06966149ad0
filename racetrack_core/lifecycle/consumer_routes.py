"""Routes of the Lifecycle API: external service consumers (ESCs) and their tokens (staff).

An ESC is a program that calls jobs through Pub with tokens of its own; it authenticates as
``ESC <name>`` and may call what its grants allow (nothing until a staff member grants it).
Routes take the ESC's id or its name.
"""

from __future__ import annotations

import re
import time

from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from racetrack_core.lifecycle import accounts, answers, audit, bodies
from racetrack_core.lifecycle.audit import EventKind
from racetrack_core.lifecycle.context import caller_of, service_of
from racetrack_core.lifecycle.deploy_routes import query_flag
from racetrack_core.lifecycle.openapi import schemas
from racetrack_core.lifecycle.permissions import authorize_admin, permission_dto
from racetrack_core.lifecycle.responses import BadRequest, Conflict, JSONAnswer, NotFound
from racetrack_core.lifecycle.token_routes import (
    expiry_from_days,
    issue,
    optional_json_body,
    revoke_and_audit,
)
from racetrack_core.storage.models import AuthToken, ExternalConsumer, Permission, SubjectKind

ESC_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def consumer_dto(consumer: ExternalConsumer) -> answers.ConsumerRecord:
    return {
        "id": consumer.id,
        "name": consumer.name,
        "create_time": int(consumer.created_at),
        "created_by": consumer.created_by,
    }


def find_consumer(session: Session, key: str) -> ExternalConsumer:
    """The ESC with this id, else this name; NotFound otherwise."""
    consumer = (
        session.get(ExternalConsumer, key)
        or session.exec(select(ExternalConsumer).where(ExternalConsumer.name == key)).first()
    )
    if consumer is None:
        raise NotFound(f"no external service consumer with id or name '{key}'; see GET /escs")
    return consumer


def require_admin(request: Request) -> None:
    with Session(service_of(request).engine) as session:
        authorize_admin(session, caller_of(request))


@schemas(query=bodies.ConsumersQuery, answer=list[answers.ConsumerRecord])
def list_consumers(request: Request) -> JSONAnswer:
    """Every ESC, by name (staff).

    ``?tokens=true`` adds each one's ``tokens``, as ``GET /escs/{id}/auth_data`` lists them.
    """
    caller = caller_of(request)
    with_tokens = query_flag(request, "tokens", default=False)
    with Session(service_of(request).engine) as session:
        authorize_admin(session, caller)
        rows = session.exec(select(ExternalConsumer).order_by(col(ExternalConsumer.name)))
        if not with_tokens:
            return JSONAnswer([consumer_dto(row) for row in rows])
        tokens = _esc_tokens(session)
        now = time.time()
        return JSONAnswer(
            [
                {
                    **consumer_dto(row),
                    "tokens": [
                        accounts.token_dto(token, now) for token in tokens.get(row.name, [])
                    ],
                }
                for row in rows
            ]
        )


def _esc_tokens(session: Session) -> dict[str, list[AuthToken]]:
    """Every ESC's tokens by its name, newest first (``accounts.tokens_of`` for all of them in
    one query)."""
    tokens: dict[str, list[AuthToken]] = {}
    rows = session.exec(select(AuthToken).where(AuthToken.subject_kind == SubjectKind.ESC))
    for row in sorted(rows, key=lambda row: row.created_at, reverse=True):
        tokens.setdefault(row.subject_name, []).append(row)
    return tokens


@schemas(body=bodies.ConsumerBody, answer=answers.ConsumerRecord)
def create_consumer(request: Request) -> JSONAnswer:
    """Create an ESC, ``{name}`` (staff); give it a token with ``POST /escs/{id}/auth_token``."""
    caller = caller_of(request)
    require_admin(request)
    name = optional_json_body(request).get("name")
    if not isinstance(name, str) or not ESC_NAME.fullmatch(name):
        raise BadRequest(
            "field 'name' must be 1 to 128 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        )
    with Session(service_of(request).engine) as session:
        authorize_admin(session, caller)
        if session.exec(select(ExternalConsumer).where(ExternalConsumer.name == name)).first():
            raise Conflict(f"an external service consumer named {name} exists already")
        consumer = ExternalConsumer(name=name, created_by=caller.name)
        session.add(consumer)
        session.commit()
        session.refresh(consumer)
        return JSONAnswer(consumer_dto(consumer))


@schemas(answer=None)
def delete_consumer(request: Request) -> JSONAnswer:
    """Delete an ESC with its grants; its tokens stop working at once (staff)."""
    caller = caller_of(request)
    with Session(service_of(request).engine) as session:
        authorize_admin(session, caller)
        consumer = find_consumer(session, request.path_params["id"])
        for row in accounts.tokens_of(session, SubjectKind.ESC, consumer.name):
            revoke_and_audit(session, caller, row)
        grants = session.exec(
            select(Permission).where(
                Permission.subject_kind == SubjectKind.ESC,
                Permission.subject_name == consumer.name,
            )
        )
        for grant in grants:
            audit.record(
                session,
                EventKind.PERMISSION_REVOKED,
                caller.name,
                job_name=grant.job_family,
                job_version=grant.job_version,
                subject=f"ESC {consumer.name}",
                grant=permission_dto(grant),
            )
            session.delete(grant)
        session.delete(consumer)
        session.commit()
    return JSONAnswer(None)


@schemas(answer=answers.ConsumerRecord)
def auth_data(request: Request) -> JSONAnswer:
    """An ESC and its tokens: ``{id, name, tokens: [{id, hint, expiry_time, active, ...}]}``."""
    caller = caller_of(request)
    with Session(service_of(request).engine) as session:
        authorize_admin(session, caller)
        consumer = find_consumer(session, request.path_params["id"])
        now = time.time()
        tokens = accounts.tokens_of(session, SubjectKind.ESC, consumer.name)
        return JSONAnswer(
            {
                **consumer_dto(consumer),
                "tokens": [accounts.token_dto(row, now) for row in tokens],
            }
        )


@schemas(body=bodies.ConsumerTokenBody, answer=answers.NewToken, optional_body=True)
def create_consumer_token(request: Request) -> JSONAnswer:
    """A new token for an ESC, ``{expiry_time: unix seconds | null}`` or ``{expires_in_days}``:
    ``{id, token, ...}``, the token shown once (staff)."""
    caller = caller_of(request)
    require_admin(request)
    body = optional_json_body(request)
    expires_at = expiry_from_days(body.get("expires_in_days"))
    expiry_time = body.get("expiry_time")
    if expiry_time is not None:
        if isinstance(expiry_time, bool) or not isinstance(expiry_time, int | float):
            raise BadRequest("field 'expiry_time' must be unix seconds, or null for no expiry")
        if expiry_time <= time.time():
            raise BadRequest("field 'expiry_time' is in the past; give a time to come")
        expires_at = float(expiry_time)
    with Session(service_of(request).engine) as session:
        authorize_admin(session, caller)
        name = find_consumer(session, request.path_params["id"]).name
    return JSONAnswer(issue(request, caller, SubjectKind.ESC, name, expires_at))


@schemas(answer=answers.TokenRecord)
def revoke_consumer_token(request: Request) -> JSONAnswer:
    """Revoke one token of an ESC (staff)."""
    caller = caller_of(request)
    with Session(service_of(request).engine) as session:
        authorize_admin(session, caller)
        consumer = find_consumer(session, request.path_params["id"])
        row = session.get(AuthToken, request.path_params["token_id"])
        if row is None or row.subject_kind != SubjectKind.ESC or row.subject_name != consumer.name:
            raise NotFound(
                f"ESC {consumer.name} has no token with id {request.path_params['token_id']}"
            )
        revoke_and_audit(session, caller, row)
        return JSONAnswer(accounts.token_dto(row))


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/escs", list_consumers, methods=["GET"]),
        Route("/api/v1/escs", create_consumer, methods=["POST"]),
        Route("/api/v1/escs/{id}", delete_consumer, methods=["DELETE"]),
        Route("/api/v1/escs/{id}/auth_data", auth_data, methods=["GET"]),
        Route("/api/v1/escs/{id}/auth_token", create_consumer_token, methods=["POST"]),
        Route("/api/v1/escs/{id}/auth_token/{token_id}", revoke_consumer_token, methods=["DELETE"]),
    ]
