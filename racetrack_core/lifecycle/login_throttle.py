"""The login rate limit: failed logins counted per account and per client address."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from starlette.requests import Request

from racetrack_core.lifecycle.responses import ApiError


class TooManyAttempts(ApiError):
    """Too many failed logins lately; ``retry_after`` says in how many seconds to try again."""

    status = 429
    kind = "TooManyRequests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LoginThrottle:
    """Failed logins in a sliding window, per account and per client address, in memory.

    An account with ``account_limit`` failures, or an address with ``address_limit``, within
    the last ``window`` seconds is refused until the oldest of them leaves the window. Each
    Lifecycle process counts on its own, and a restart forgets the counts.
    """

    def __init__(
        self,
        account_limit: int = 5,
        address_limit: int = 20,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.account_limit = account_limit
        self.address_limit = address_limit
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def check(self, username: str, address: str) -> None:
        """TooManyAttempts if the account or the address has failed too often lately."""
        now = self._clock()
        with self._lock:
            for key, limit, what in (
                (f"user:{username.lower()}", self.account_limit, f"account {username}"),
                (f"addr:{address}", self.address_limit, f"address {address}"),
            ):
                times = self._recent(key, now)
                if len(times) >= limit:
                    wait = max(1, math.ceil(times[0] + self.window - now))
                    raise TooManyAttempts(
                        f"too many failed logins for {what}; try again in {wait} s", wait
                    )

    def failed(self, username: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            for key in (f"user:{username.lower()}", f"addr:{address}"):
                self._recent(key, now).append(now)

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(f"user:{username.lower()}", None)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times and len(self._failures) > 10_000:
            # Forget keys with no recent failure, so that the table cannot grow without end.
            for stale in [k for k, v in self._failures.items() if not v and k != key]:
                del self._failures[stale]
        return times


_THROTTLE_LOCK = threading.Lock()


def login_throttle(request: Request) -> LoginThrottle:
    """The app's login throttle, created on first use and kept in the app's state."""
    state = request.app.state
    with _THROTTLE_LOCK:
        throttle = getattr(state, "login_throttle", None)
        if not isinstance(throttle, LoginThrottle):
            throttle = LoginThrottle()
            state.login_throttle = throttle
        return throttle


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
