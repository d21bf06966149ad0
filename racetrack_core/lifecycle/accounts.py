"""Users and their tokens: the first admin, registration, login, token checks.

Users register with an e-mail address and a password that passes ``check_password``; the
account stays inactive until a staff member activates it. A token belongs to one subject (a
user, an external service consumer or a job family), may expire, and may be revoked; only its
SHA-256 digest is stored. Failed logins are counted per account and per client address by a
``LoginThrottle`` kept in the database (shared by every Lifecycle replica). Scopes and grants are in
``permissions.py``.
"""

from __future__ import annotations

import functools
import importlib.resources
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from starlette.requests import Request

from racetrack_core.auth import Caller
from racetrack_core.lifecycle import audit
from racetrack_core.lifecycle.answers import TokenRecord
from racetrack_core.lifecycle.bodies import MAX_PASSWORD_LENGTH as MAX_PASSWORD_LENGTH
from racetrack_core.lifecycle.login_throttle import LoginThrottle
from racetrack_core.lifecycle.permissions import grant_new_user
from racetrack_core.lifecycle.responses import (
    AwaitingActivation,
    BadRequest,
    Conflict,
    Forbidden,
    Unauthenticated,
)
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
from racetrack_core.storage.models import AuthToken, ExternalConsumer, SubjectKind, User
from racetrack_core.wire import AUTH_HEADER as AUTH_HEADER
from racetrack_core.wire import MIN_PASSWORD_LENGTH as MIN_PASSWORD_LENGTH

log = logging.getLogger("racetrack.lifecycle")

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
    existing = AdminBootstrap(created=False, generated_password=None, password_file=None)
    with Session(engine) as session:
        if session.exec(select(User).where(User.username == ADMIN)).first() is not None:
            return existing
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
        try:
            session.commit()
        except IntegrityError:  # another replica, starting at the same time, created it
            if password_file is not None:
                password_file.unlink(missing_ok=True)  # not that admin's password
            return existing
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
            raise AwaitingActivation(awaits_activation(user.username))
        return Caller(kind="user", name=user.username, is_staff=user.is_staff)
    if row.subject_kind == SubjectKind.JOB_FAMILY:
        return Caller(kind="job_family", name=row.subject_name)
    consumer = session.exec(
        select(ExternalConsumer).where(ExternalConsumer.name == row.subject_name)
    ).first()
    if consumer is None:
        raise Unauthenticated("wrong credentials: the token's external consumer was deleted")
    return Caller(kind="esc", name=consumer.name)


def awaits_activation(username: str) -> str:
    return (
        f"user {username} is registered but awaits activation by a staff member; "
        "ask one to activate it"
    )


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


def login(
    engine: Engine,
    username: str,
    password: str,
    throttle: LoginThrottle | None = None,
    address: str = "",
) -> tuple[User, str]:
    """Check a username and password; return the user and a new token for the session.

    With a ``throttle``, a refused attempt counts against the account and the address, and
    an account or address with too many recent failures is refused (429) before the check.
    """
    if throttle is not None:
        throttle.check(username, address)
    with Session(engine) as session:
        user = session.exec(select(User).where(User.username == username)).first()
        # Hash even for an unknown user, so the answer time does not reveal which names exist.
        valid = verify_password(user.password_hash if user else _dummy_hash(), password)
        if user is None or not valid:
            if throttle is not None:
                throttle.failed(username, address)
            raise Unauthenticated("incorrect username or password")
        if throttle is not None:
            throttle.succeeded(username)
        if not user.is_active:
            raise AwaitingActivation(awaits_activation(username))
        user.last_login_at = time.time()
        session.add(user)
        session.commit()
        session.refresh(user)
    return user, issue_token(engine, SubjectKind.USER, username)


@functools.cache
def _dummy_hash() -> str:
    return hash_password("racetrack-no-such-user")


# --- registration and passwords -------------------------------------------------------------

#: An e-mail address, loosely: something@domain.tld, no spaces.
USERNAME_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


@functools.cache
def common_passwords() -> frozenset[str]:
    """The common passwords that ``check_password`` refuses, lower-cased."""
    text = (
        importlib.resources.files("racetrack_core.lifecycle")
        .joinpath("common_passwords.txt")
        .read_text(encoding="utf-8")
    )
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


def check_username(username: str) -> None:
    """BadRequest unless ``username`` is an e-mail address."""
    if len(username) > 255 or not USERNAME_PATTERN.fullmatch(username):
        raise BadRequest(
            f"username '{username[:80]}' is not an e-mail address; register with your e-mail "
            "address, such as jane@example.com"
        )


def check_password(password: str, username: str = "") -> None:
    """BadRequest naming the rule that ``password`` breaks (the password is never echoed)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BadRequest(
            f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise BadRequest(f"the password is too long: use at most {MAX_PASSWORD_LENGTH} characters")
    if password.isdigit():
        raise BadRequest("the password is all digits: mix in letters or other characters")
    folded = password.lower()
    if folded in common_passwords():
        raise BadRequest("the password is one of the most common passwords: choose another")
    if username and folded in {username.lower(), username.split("@")[0].lower()}:
        raise BadRequest("the password is the username: choose another")


def register(engine: Engine, username: str, password: str) -> User:
    """Create an inactive user with the new-user grants; Conflict if the name is taken."""
    check_username(username)
    check_password(password, username)
    password_hash = hash_password(password)
    with Session(engine) as session:
        if session.exec(select(User).where(User.username == username)).first() is not None:
            raise Conflict(f"user {username} is already registered; log in instead")
        user = User(username=username, password_hash=password_hash)
        session.add(user)
        grant_new_user(session, username)
        audit.record(session, audit.EventKind.USER_REGISTERED, username, subject=username)
        session.commit()
        session.refresh(user)
        return user


def change_password(
    engine: Engine,
    username: str,
    old_password: str,
    new_password: str,
    throttle: LoginThrottle | None = None,
    address: str = "",
) -> None:
    """Replace a user's password after checking the old one (a wrong one counts as a failed
    login) and the rules on the new one."""
    if throttle is not None:
        throttle.check(username, address)
    with Session(engine) as session:
        user = session.exec(select(User).where(User.username == username)).first()
        if user is None or not verify_password(user.password_hash, old_password):
            if throttle is not None:
                throttle.failed(username, address)
            raise Unauthenticated("the old password is not correct")
        check_password(new_password, username)
        if new_password == old_password:
            raise BadRequest("the new password is the old one: choose another")
        user.password_hash = hash_password(new_password)
        session.add(user)
        session.commit()


# --- tokens ---------------------------------------------------------------------------------


def token_dto(row: AuthToken, now: float | None = None) -> TokenRecord:
    """A token's record as the API shows it: never the token, only its last characters."""
    now = time.time() if now is None else now
    expired = row.expires_at is not None and row.expires_at <= now
    return {
        "id": row.id,
        "hint": row.hint,
        "create_time": int(row.created_at),
        "expiry_time": int(row.expires_at) if row.expires_at is not None else None,
        "revoked": row.revoked_at is not None,
        "revoke_time": int(row.revoked_at) if row.revoked_at is not None else None,
        "active": row.revoked_at is None and not expired,
        "last_use_time": int(row.last_used_at) if row.last_used_at is not None else None,
    }


def tokens_of(session: Session, kind: SubjectKind, name: str) -> list[AuthToken]:
    """A subject's tokens, newest first."""
    rows = session.exec(
        select(AuthToken).where(AuthToken.subject_kind == kind, AuthToken.subject_name == name)
    )
    return sorted(rows, key=lambda row: row.created_at, reverse=True)


def create_token(
    engine: Engine, kind: SubjectKind, name: str, expires_at: float | None
) -> tuple[AuthToken, str]:
    """Issue a token and return its row and the token (to be shown once)."""
    token = issue_token(engine, kind, name, expires_at)
    with Session(engine) as session:
        row = session.exec(
            select(AuthToken).where(AuthToken.token_digest == token_digest(token))
        ).one()
        return row, token


def token_row(session: Session, token: str) -> AuthToken | None:
    """The row of a presented token, if it is one of ours."""
    return session.exec(
        select(AuthToken).where(AuthToken.token_digest == token_digest(token))
    ).first()


def revoke(session: Session, row: AuthToken) -> bool:
    """Revoke a token (the caller commits); False if it was revoked already."""
    if row.revoked_at is not None:
        return False
    row.revoked_at = time.time()
    session.add(row)
    return True
