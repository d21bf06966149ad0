"""Who may do what, in words that Lifecycle and its clients share: scopes, subject kinds, and
whether a set of grants allows a scope on a job.

Lifecycle stores grants as rows (``storage.models.Permission``) and enforces them
(``lifecycle.permissions``); the Dashboard, which reaches Lifecycle only over its API, uses
:func:`allows` on the grants the API lists to show only the actions a viewer may take. Both
read the same rules from here. This module imports nothing of Racetrack.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol
from urllib.parse import unquote

#: Separators of path segments, as a job's server might read them once percent-decoded.
_SEGMENT_SEPARATORS = re.compile(r"[/\\]")


class Scope(StrEnum):
    READ_JOB = "read_job"
    DEPLOY_JOB = "deploy_job"
    DEPLOY_NEW_FAMILY = "deploy_new_family"
    DELETE_JOB = "delete_job"
    CALL_JOB = "call_job"
    CALL_ADMIN_API = "call_admin_api"
    FULL_ACCESS = "full_access"


class SubjectKind(StrEnum):
    USER = "user"
    ESC = "esc"
    JOB_FAMILY = "job_family"


class GrantLike(Protocol):
    """A grant as :func:`allows` reads it: a stored row or one listed by the API.

    An empty ``job_family`` means every job; an empty ``job_version`` every version of the
    family; an empty ``endpoint`` every path.
    """

    @property
    def scope(self) -> str: ...

    @property
    def job_family(self) -> str | None: ...

    @property
    def job_version(self) -> str | None: ...

    @property
    def endpoint(self) -> str | None: ...


@dataclass(frozen=True)
class Grant:
    """A grant as the API lists it (a client builds these from the JSON)."""

    scope: str
    job_family: str | None = None
    job_version: str | None = None
    endpoint: str | None = None


def allows(
    grants: Iterable[GrantLike],
    scope: Scope,
    family: str | None = None,
    version: str | None = None,
    endpoint: str | None = None,
) -> bool:
    """Whether one of ``grants`` covers ``scope`` on this job (and endpoint)."""
    for grant in grants:
        if grant.scope not in (scope, Scope.FULL_ACCESS):
            continue
        if grant.job_family is not None and grant.job_family != family:
            continue
        if grant.job_version is not None and grant.job_version != version:
            continue
        if grant.endpoint is not None and not within(endpoint, grant.endpoint):
            continue
        return True
    return False


def within(endpoint: str | None, prefix: str) -> bool:
    """Whether a job's endpoint path is ``prefix`` or under it (``/`` covers every path).

    A path with a dot segment is under no prefix but ``/``: ``/api/v1/../../docs`` would
    otherwise pass for a path under ``/api/v1`` (see :func:`has_dot_segment`).
    """
    if endpoint is None:
        return False
    path, prefix = "/" + endpoint.lstrip("/"), "/" + prefix.strip("/")
    if prefix == "/":
        return True
    if has_dot_segment(path):
        return False
    return path == prefix or path.startswith(prefix + "/")


def has_dot_segment(path: str) -> bool:
    """Whether ``path`` has a ``.`` or ``..`` segment once percent-decoded (``%2e%2E``, with
    ``%2F`` or a backslash between segments too). Decoding a decoded path again only makes
    this stricter."""
    if "." not in path and "%" not in path:
        return False
    return any(segment in (".", "..") for segment in _SEGMENT_SEPARATORS.split(unquote(path)))
