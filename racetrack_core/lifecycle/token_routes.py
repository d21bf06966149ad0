"""Routes of the Lifecycle API: the caller's own tokens (list, create, revoke, regenerate).

A token is shown once, in the answer that creates it; afterwards only its last characters
(``hint``) are. The tokens of external service consumers are managed under ``/escs``.
"""

from __future__ import annotations

import time
from typing import Any

import anyio.from_thread
from sqlmodel import Session
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from racetrack_core.auth import Caller
from racetrack_core.lifecycle import accounts, answers, audit, bodies
from racetrack_core.lifecycle.account_routes import set_auth_cookie
from racetrack_core.lifecycle.audit import EventKind
from racetrack_core.lifecycle.context import caller_of, service_of
from racetrack_core.lifecycle.deploy_routes import read_json_body
from racetrack_core.lifecycle.openapi import schemas
from racetrack_core.lifecycle.responses import BadRequest, JSONAnswer, NotFound
from racetrack_core.storage.models import AuthToken, SubjectKind

DAY = 24 * 3600.0
MAX_DAYS = 3650


def own_kind(caller: Caller) -> SubjectKind:
    """The subject kind of a caller that may hold tokens, or BadRequest."""
    if caller.kind == "user":
        return SubjectKind.USER
    if caller.kind == "esc":
        return SubjectKind.ESC
    raise BadRequest(f"{caller.label} has no tokens of its own to manage")


def expiry_from_days(value: object) -> float | None:
    """The unix time ``value`` days from now (None for no expiry), or BadRequest."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_DAYS:
        raise BadRequest(f"field 'expires_in_days' must be a number of days from 1 to {MAX_DAYS}")
    return time.time() + float(value) * DAY


def optional_json_body(request: Request) -> dict[str, Any]:
    """The body as a JSON object, or an empty one when no body was sent."""
    if not anyio.from_thread.run(request.body):
        return {}
    return read_json_body(request)


@schemas(answer=list[answers.TokenRecord])
def list_tokens(request: Request) -> JSONAnswer:
    """The caller's tokens, newest first: id, hint, times, revoked, active (never the token)."""
    caller = caller_of(request)
    kind = own_kind(caller)
    with Session(service_of(request).engine) as session:
        now = time.time()
        return JSONAnswer(
            [accounts.token_dto(row, now) for row in accounts.tokens_of(session, kind, caller.name)]
        )


@schemas(body=bodies.TokenBody, answer=answers.NewToken, optional_body=True)
def create_token(request: Request) -> JSONAnswer:
    """A new token for the calling user, ``{expires_in_days?}``: ``{id, token, ...}`` (once)."""
    caller = caller_of(request)
    if caller.kind != "user":
        # An ESC's tokens, and their expiry, are for staff to decide.
        raise BadRequest(f"{caller.label} is not a user; staff make its tokens under /escs")
    body = optional_json_body(request)
    expires_at = expiry_from_days(body.get("expires_in_days"))
    return JSONAnswer(issue(request, caller, SubjectKind.USER, caller.name, expires_at))


def issue(
    request: Request, actor: Caller, kind: SubjectKind, name: str, expires_at: float | None
) -> answers.NewToken:
    """Create a token, audit it, and answer its record with the token itself (shown once)."""
    engine = service_of(request).engine
    row, token = accounts.create_token(engine, kind, name, expires_at)
    with Session(engine) as session:
        audit.record(
            session,
            EventKind.TOKEN_CREATED,
            actor.name,
            subject=name,
            subject_kind=kind.value,
            token_id=row.id,
        )
        session.commit()
    return {**accounts.token_dto(row), "token": token}


@schemas(answer=answers.TokenRecord)
def revoke_token(request: Request) -> JSONAnswer:
    """Revoke one of the caller's tokens; it stops working at once (Pub: within its cache)."""
    caller = caller_of(request)
    kind = own_kind(caller)
    with Session(service_of(request).engine) as session:
        row = session.get(AuthToken, request.path_params["id"])
        if row is None or row.subject_kind != kind or row.subject_name != caller.name:
            raise NotFound(f"you have no token with id {request.path_params['id']}")
        revoke_and_audit(session, caller, row)
        return JSONAnswer(accounts.token_dto(row))


def revoke_and_audit(session: Session, actor: Caller, row: AuthToken) -> None:
    if accounts.revoke(session, row):
        audit.record(
            session,
            EventKind.TOKEN_REVOKED,
            actor.name,
            subject=row.subject_name,
            subject_kind=row.subject_kind,
            token_id=row.id,
        )
    session.commit()
    session.refresh(row)


@schemas(answer=answers.Regenerated)
def regenerate_user_token(request: Request) -> JSONAnswer:
    """Revoke the token this request carries and answer a new one, ``{new_token}`` (also set
    as the cookie)."""
    caller = caller_of(request)
    if caller.kind != "user":
        raise BadRequest(f"{caller.label} is not a user; regenerate its tokens under /escs")
    presented = accounts.request_token(request) or request.cookies.get(accounts.AUTH_HEADER)
    new = issue(request, caller, SubjectKind.USER, caller.name, None)
    if presented:
        with Session(service_of(request).engine) as session:
            row = accounts.token_row(session, presented)
            if row is not None and row.subject_name == caller.name:
                revoke_and_audit(session, caller, row)
    regenerated: answers.Regenerated = {"new_token": new["token"]}
    answer = JSONAnswer(regenerated)
    set_auth_cookie(answer, new["token"])
    return answer


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/tokens", list_tokens, methods=["GET"]),
        Route("/api/v1/tokens", create_token, methods=["POST"]),
        Route("/api/v1/tokens/{id}", revoke_token, methods=["DELETE"]),
        Route("/api/v1/auth/token/user/regenerate", regenerate_user_token, methods=["POST"]),
    ]
