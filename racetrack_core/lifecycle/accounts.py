"""Users and their tokens: the first admin, login, token checks.

The full permission model (registration, scopes, grants, external consumers) belongs to the
auth issue; until then every active user with a valid token may use the API, and staff alone
may change plugins. Nothing answers without a valid token except the discovery and health
routes.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, select
from starlette.requests import Request

from racetrack_core.auth import Caller
from racetrack_core.lifecycle.responses import Forbidden, Unauthenticated
from racetrack_core.security import (
    digests_equal,
    hash_password,
    new_password,
    new_token,
    token_digest,
    token_hint,
    verify_password,
    write_private_file,
)
from racetrack_core.storage.models import AuthToken, SubjectKind, User

log = logging.getLogger("racetrack.lifecycle")

AUTH_HEADER = "X-Racetrack-Auth"
LEGACY_AUTH_HEADERS = ("X-Racetrack-User-Auth", "X-Racetrack-Esc-Auth")
ADMIN = "admin"
#: A token's last use is written at most this often (seconds), not on every request.
LAST_USE_RESOLUTION = 60.0


@dataclass(frozen=True)
class AdminBootstrap:
    """What ``ensure_admin`` did: the password is set only when the account was just created
    with a generated password (so that it can be printed once)."""

    created: bool
    generated_password: str | None
    password_file: Path | None


def ensure_admin(engine: Engine, home: Path, password: str | None) -> AdminBootstrap:
    """Create the ``admin`` account (active, staff) on the first start; reuse it afterwards.

    The password comes from ``password`` (RACETRACK_ADMIN_PASSWORD) or is generated, printed
    once by the caller and written to ``<home>/admin-password`` with mode 600.
    """
    with Session(engine) as session:
        if session.exec(select(User).where(User.username == ADMIN)).first() is not None:
            return AdminBootstrap(created=False, generated_password=None, password_file=None)
        generated = None
        password_file = None
        if not password:
            generated = password = new_password()
            password_file = home / "admin-password"
            write_private_file(password_file, password + "\n")
        session.add(
            User(
                username=ADMIN,
                password_hash=hash_password(password),
                is_active=True,
                is_staff=True,
            )
        )
        session.commit()
    return AdminBootstrap(created=True, generated_password=generated, password_file=password_file)


def request_token(request: Request) -> str | None:
    """The token a request carries in X-Racetrack-Auth (or a legacy header), if any."""
    for name in (AUTH_HEADER, *LEGACY_AUTH_HEADERS):
        value = request.headers.get(name)
        if value:
            return value.strip()
    return None


def caller_for_token(engine: Engine, token: str | None) -> Caller:
    """Who a token belongs to; Unauthenticated saying why when it is missing or refused."""
    if not token:
        raise Unauthenticated(f"no header {AUTH_HEADER}: not logged in")
    digest = token_digest(token)
    with Session(engine) as session:
        row = session.exec(select(AuthToken).where(AuthToken.token_digest == digest)).first()
        if row is None or not digests_equal(row.token_digest, digest):
            raise Unauthenticated("wrong credentials: the token is unknown; log in again")
        now = time.time()
        if row.revoked_at is not None:
            raise Unauthenticated("the token has been revoked; log in again")
        if row.expires_at is not None and row.expires_at <= now:
            raise Unauthenticated("the token has expired; log in again")
        caller = _subject(session, row)
        if row.last_used_at is None or now - row.last_used_at > LAST_USE_RESOLUTION:
            row.last_used_at = now
            session.add(row)
            session.commit()
        return caller


def _subject(session: Session, row: AuthToken) -> Caller:
    if row.subject_kind == SubjectKind.USER:
        user = session.exec(select(User).where(User.username == row.subject_name)).first()
        if user is None:
            raise Unauthenticated("wrong credentials: the token's user no longer exists")
        if not user.is_active:
            raise Unauthenticated(
                f"user {user.username} is not active yet; ask an administrator to activate it"
            )
        return Caller(kind="user", name=user.username, is_staff=user.is_staff)
    if row.subject_kind == SubjectKind.JOB_FAMILY:
        return Caller(kind="job_family", name=row.subject_name)
    return Caller(kind="esc", name=row.subject_name)


def require_staff(caller: Caller) -> None:
    if not caller.is_staff:
        raise Forbidden(f"{caller.label} is not a staff member; ask an administrator")


def issue_token(
    engine: Engine, kind: SubjectKind, name: str, expires_at: float | None = None
) -> str:
    """Create a token for a subject and return it; only its digest is stored."""
    token = new_token()
    with Session(engine) as session:
        session.add(
            AuthToken(
                subject_kind=kind,
                subject_name=name,
                token_digest=token_digest(token),
                hint=token_hint(token),
                expires_at=expires_at,
            )
        )
        session.commit()
    return token


def login(engine: Engine, username: str, password: str) -> tuple[User, str]:
    """Check a username and password; return the user and a new token for the session."""
    with Session(engine) as session:
        user = session.exec(select(User).where(User.username == username)).first()
        # Hash even for an unknown user, so the answer time does not reveal which names exist.
        valid = verify_password(user.password_hash if user else _dummy_hash(), password)
        if user is None or not valid:
            raise Unauthenticated("incorrect username or password")
        if not user.is_active:
            raise Unauthenticated(
                f"user {username} is not active yet; ask an administrator to activate it"
            )
        user.last_login_at = time.time()
        session.add(user)
        session.commit()
        session.refresh(user)
    return user, issue_token(engine, SubjectKind.USER, username)


@functools.cache
def _dummy_hash() -> str:
    return hash_password("racetrack-no-such-user")
