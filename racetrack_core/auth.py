"""Who is calling: the caller a request authenticates as, and the plugins' say in it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from racetrack_core.errors import AuthenticationError

__all__ = ["AuthenticationError", "Caller", "RequestLike", "authenticate_with_plugins"]

CallerKind = Literal["user", "esc", "job_family", "internal"]


class RequestLike(Protocol):
    """The parts of an HTTP request that authentication looks at (a Starlette Request fits)."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def cookies(self) -> Mapping[str, str]: ...

    @property
    def url(self) -> Any: ...


@dataclass(frozen=True)
class Caller:
    """An authenticated subject: a user, an external service consumer or a job family."""

    kind: CallerKind
    name: str
    is_staff: bool = False
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def label(self) -> str:
        """How the caller is named to jobs and in the audit log, such as ``User admin``."""
        titles = {"user": "User", "esc": "ESC", "job_family": "Job family", "internal": "Internal"}
        return f"{titles[self.kind]} {self.name}"


class HookRelay(Protocol):
    """What authentication needs of the plugin manager (which imports this module's types
    for its hook specifications): its hook relay."""

    @property
    def hook(self) -> Any: ...


def authenticate_with_plugins(plugins: HookRelay, request: RequestLike) -> Caller | None:
    """Ask the plugins who is calling; the first non-None answer wins, None if none knows."""
    caller = plugins.hook.authenticate_request(request=request)
    if caller is not None and not isinstance(caller, Caller):
        raise AuthenticationError(
            f"a plugin's authenticate_request returned {type(caller).__name__}, not a Caller"
        )
    return caller
