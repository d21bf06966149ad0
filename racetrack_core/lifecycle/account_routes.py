"""Routes of the Lifecycle API: users (register, log in and out, change password) and their
administration (list, activate, deactivate, make staff)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from racetrack_core.auth import Caller
from racetrack_core.lifecycle import accounts, answers, audit, bodies, login_throttle
from racetrack_core.lifecycle.audit import EventKind
from racetrack_core.lifecycle.context import caller_of, service_of
from racetrack_core.lifecycle.deploy_routes import read_json_body
from racetrack_core.lifecycle.openapi import schemas
from racetrack_core.lifecycle.permissions import authorize_admin
from racetrack_core.lifecycle.responses import (
    BadRequest,
    Forbidden,
    JSONAnswer,
    NotFound,
    error_answer,
)
from racetrack_core.storage.models import User
from racetrack_core.wire import CLIENT_ADDRESS_HEADER as CLIENT_ADDRESS_HEADER
from racetrack_core.wire import SERVICE_TOKEN_HEADER as SERVICE_TOKEN_HEADER

#: How long the browser keeps the session cookie (the token itself does not expire).
COOKIE_MAX_AGE = 31 * 24 * 3600
#: A service in front of Lifecycle (the Dashboard) names the person's address in this header,
#: along with the internal service token in SERVICE_TOKEN_HEADER; without it, the header is
#: ignored, so nobody else can choose the address their failed logins count against.


def client_address(request: Request) -> str:
    """The address a login counts against: the forwarding service's word for it, or the peer."""
    named = request.headers.get(CLIENT_ADDRESS_HEADER, "").strip()
    token = request.headers.get(SERVICE_TOKEN_HEADER)
    if named and token and service_of(request).is_internal_token(token):
        return named[:64]
    return login_throttle.client_address(request)


def set_auth_cookie(answer: JSONAnswer, token: str) -> None:
    answer.set_cookie(
        accounts.AUTH_HEADER,
        token,
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="lax",
        path="/",
    )


def text_fields(body: dict[str, Any], *names: str) -> list[str]:
    """The named string fields of a body, or BadRequest naming the ones missing."""
    missing = [name for name in names if not isinstance(body.get(name), str) or not body[name]]
    if missing:
        listed = ", ".join(f"'{name}'" for name in missing)
        raise BadRequest(f"field{'s' if len(missing) > 1 else ''} {listed} required (strings)")
    return [body[name] for name in names]


@schemas(body=bodies.Credentials, answer=answers.Session)
def login(request: Request) -> JSONAnswer:
    """Exchange a username and password for a token (also set as a cookie for the browser).

    Open. Five failed attempts a minute for one account (twenty for one address) are answered
    429 with Retry-After.
    """
    username, password = text_fields(read_json_body(request), "username", "password")
    throttle = login_throttle.login_throttle(request)
    try:
        user, token = accounts.login(
            service_of(request).engine,
            username,
            password,
            throttle=throttle,
            address=client_address(request),
        )
    except login_throttle.TooManyAttempts as exc:
        refused = error_answer(exc.status, str(exc), exc.kind)
        refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    session: answers.Session = {
        "username": user.username,
        "token": token,
        "is_staff": user.is_staff,
    }
    answer = JSONAnswer(session)
    set_auth_cookie(answer, token)
    return answer


@schemas(answer=answers.Session)
def validate_user_auth(request: Request) -> JSONAnswer:
    """Tell a client whose token it holds."""
    caller = caller_of(request)
    session: answers.Session = {
        "username": caller.name,
        "token": accounts.request_token(request),
        "is_staff": caller.is_staff,
        "kind": caller.kind,
    }
    return JSONAnswer(session)


@schemas(answer=None)
def logout(_request: Request) -> JSONAnswer:
    """Clear the session cookie (open; the token itself stays valid until revoked)."""
    answer = JSONAnswer(None)
    answer.delete_cookie(accounts.AUTH_HEADER, path="/")
    return answer


@schemas(body=bodies.Registration, answer=answers.UserRecord)
def register(request: Request) -> JSONAnswer:
    """Register a user (open): the username is an e-mail address; the account is inactive
    until a staff member activates it."""
    username, password = text_fields(read_json_body(request), "username", "password")
    user = accounts.register(service_of(request).engine, username.strip(), password)
    return JSONAnswer(user_dto(user))


@schemas(body=bodies.PasswordChange, answer=None)
def change_password(request: Request) -> JSONAnswer:
    """Change the caller's own password: ``{old_password, new_password}``."""
    caller = caller_of(request)
    if caller.kind != "user":
        raise BadRequest(f"{caller.label} is not a user and has no password")
    old, new = text_fields(read_json_body(request), "old_password", "new_password")
    try:
        accounts.change_password(
            service_of(request).engine,
            caller.name,
            old,
            new,
            throttle=login_throttle.login_throttle(request),
            address=client_address(request),
        )
    except login_throttle.TooManyAttempts as exc:
        refused = error_answer(exc.status, str(exc), exc.kind)
        refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    return JSONAnswer(None)


def user_dto(user: User) -> answers.UserRecord:
    """A user as the API shows it: never the password hash."""
    return {
        "id": user.id,
        "username": user.username,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "create_time": int(user.created_at),
        "last_login_time": int(user.last_login_at) if user.last_login_at else None,
    }


@schemas(answer=list[answers.UserRecord])
def list_users(request: Request) -> JSONAnswer:
    """Every user, by username (staff)."""
    caller = caller_of(request)
    with Session(service_of(request).engine) as session:
        authorize_admin(session, caller)
        rows = session.exec(select(User).order_by(col(User.username)))
        return JSONAnswer([user_dto(row) for row in rows])


def _change_user(request: Request, change: str, value: bool) -> JSONAnswer:
    caller = caller_of(request)
    username = request.path_params["username"]
    with Session(service_of(request).engine) as session:
        authorize_admin(session, caller)
        if change == "is_staff" and not caller.is_staff:
            raise Forbidden(f"{caller.label} is not a staff member; only staff make staff")
        user = session.exec(select(User).where(User.username == username)).first()
        if user is None:
            raise NotFound(f"no user named {username}; see GET /api/v1/users")
        _refuse_locking_out(caller, user, change, value)
        if getattr(user, change) == value:
            return JSONAnswer(user_dto(user))
        setattr(user, change, value)
        session.add(user)
        if change == "is_active":
            kind = EventKind.USER_ACTIVATED if value else EventKind.USER_DEACTIVATED
            audit.record(session, kind, caller.name, subject=username)
        else:
            kind = EventKind.PERMISSION_GRANTED if value else EventKind.PERMISSION_REVOKED
            audit.record(session, kind, caller.name, subject=username, scope="staff")
        session.commit()
        session.refresh(user)
        return JSONAnswer(user_dto(user))


def _refuse_locking_out(caller: Caller, user: User, change: str, value: bool) -> None:
    if caller.kind == "user" and caller.name == user.username and not value:
        what = "deactivate your own account" if change == "is_active" else "drop your own staff"
        raise BadRequest(f"you cannot {what}; ask another staff member")


@schemas(answer=answers.UserRecord)
def activate_user(request: Request) -> JSONAnswer:
    """Activate a user, who may then log in (staff)."""
    return _change_user(request, "is_active", True)


@schemas(answer=answers.UserRecord)
def deactivate_user(request: Request) -> JSONAnswer:
    """Deactivate a user: logging in and every token of theirs stop working (staff)."""
    return _change_user(request, "is_active", False)


@schemas(body=bodies.StaffChange, answer=answers.UserRecord)
def set_staff(request: Request) -> JSONAnswer:
    """Make a user staff, or not: ``{is_staff: bool}`` (staff only)."""
    is_staff = read_json_body(request).get("is_staff")
    if not isinstance(is_staff, bool):
        raise BadRequest("field 'is_staff' is required: true or false")
    return _change_user(request, "is_staff", is_staff)


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/users/login", login, methods=["POST"]),
        Route("/api/v1/users/validate_user_auth", validate_user_auth, methods=["GET"]),
        Route("/api/v1/users/logout", logout, methods=["GET", "POST"]),
        Route("/api/v1/users/register", register, methods=["POST"]),
        Route("/api/v1/users/change_password", change_password, methods=["PUT"]),
        Route("/api/v1/users", list_users, methods=["GET"]),
        Route("/api/v1/users/{username}/activate", activate_user, methods=["POST"]),
        Route("/api/v1/users/{username}/deactivate", deactivate_user, methods=["POST"]),
        Route("/api/v1/users/{username}/staff", set_staff, methods=["POST"]),
    ]
