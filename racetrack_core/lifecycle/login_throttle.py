"""The login rate limit: failed logins counted per account and per client address, in the
database that every Lifecycle replica shares."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine, func
from sqlmodel import Session, col, delete, select
from starlette.requests import Request

from racetrack_core.lifecycle.responses import ApiError
from racetrack_core.storage.models import LoginFailure


class TooManyAttempts(ApiError):
    """Too many failed logins lately; ``retry_after`` says in how many seconds to try again."""

    status = 429
    kind = "TooManyRequests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LoginThrottle:
    """Failed logins in a sliding window, per account and per client address, in the database.

    An account with ``account_limit`` failures, or an address with ``address_limit``, within
    the last ``window`` seconds is refused until the oldest of them leaves the window. Every
    Lifecycle replica over one database counts the same failures, and a restart keeps them.
    """

    def __init__(
        self,
        engine: Engine,
        account_limit: int = 5,
        address_limit: int = 20,
        window: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.account_limit = account_limit
        self.address_limit = address_limit
        self.window = window
        self._clock = clock

    def check(self, username: str, address: str) -> None:
        """TooManyAttempts if the account or the address has failed too often lately."""
        now = self._clock()
        with Session(self.engine) as session:
            for key, limit, what in (
                (_account(username), self.account_limit, f"account {username}"),
                (f"addr:{address}", self.address_limit, f"address {address}"),
            ):
                recent = select(func.count(), func.min(LoginFailure.at)).where(
                    col(LoginFailure.key) == key, col(LoginFailure.at) > now - self.window
                )
                count, oldest = session.exec(recent).one()
                if count >= limit and oldest is not None:
                    wait = max(1, math.ceil(oldest + self.window - now))
                    raise TooManyAttempts(
                        f"too many failed logins for {what}; try again in {wait} s", wait
                    )

    def failed(self, username: str, address: str) -> None:
        now = self._clock()
        with Session(self.engine) as session:
            # Failures older than the window count no more: drop them as new ones come.
            session.exec(delete(LoginFailure).where(col(LoginFailure.at) <= now - self.window))
            session.add(LoginFailure(key=_account(username), at=now))
            session.add(LoginFailure(key=f"addr:{address}", at=now))
            session.commit()

    def succeeded(self, username: str) -> None:
        with Session(self.engine) as session:
            session.exec(delete(LoginFailure).where(col(LoginFailure.key) == _account(username)))
            session.commit()


def _account(username: str) -> str:
    return f"user:{username.lower()}"


_THROTTLE_LOCK = threading.Lock()


def login_throttle(request: Request) -> LoginThrottle:
    """The app's login throttle, created on first use and kept in the app's state."""
    state = request.app.state
    with _THROTTLE_LOCK:
        throttle = getattr(state, "login_throttle", None)
        if not isinstance(throttle, LoginThrottle):
            throttle = LoginThrottle(state.service.engine)
            state.login_throttle = throttle
        return throttle


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
