"""Who may do what: scopes granted to subjects on all jobs, a family, a version or an endpoint.

    full_access        everything below, and the admin API
    call_admin_api     the administration routes (users, consumers, grants, audit of others)
    deploy_new_family  deploy a job whose name no job has yet
    deploy_job         deploy (and redeploy, move) versions of a family
    delete_job         delete versions of a family
    read_job           see jobs, their logs and deployments
    call_job           call a job through Pub

Staff users hold every scope. A subject granted ``call_admin_api`` (or ``full_access``) on
every job may use the administration routes as staff do, except making users staff. Grants
only allow; a request that no grant allows is refused
with 403 naming the scope and the job. New users get ``read_job``, ``call_job`` and
``deploy_new_family`` on every job; the user who deploys a family first also gets
``deploy_job`` and ``delete_job`` on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlmodel import Session, select

from racetrack_core.access import allows as allows
from racetrack_core.auth import Caller
from racetrack_core.lifecycle.responses import Forbidden
from racetrack_core.storage.models import Permission, Scope, SubjectKind

NEW_USER_SCOPES = (Scope.READ_JOB, Scope.CALL_JOB, Scope.DEPLOY_NEW_FAMILY)
FAMILY_OWNER_SCOPES = (Scope.DEPLOY_JOB, Scope.DELETE_JOB)


def grants_of(session: Session, caller: Caller) -> list[Permission]:
    return list(
        session.exec(
            select(Permission).where(
                Permission.subject_kind == caller.kind, Permission.subject_name == caller.name
            )
        )
    )


#: Whether a job version (family, version) passes: what ``scope_filter`` answers. A version
#: of None (an audit event about a whole family) passes on all-jobs and family grants only.
JobFilter = Callable[[str, str | None], bool]


def scope_filter(grants: Iterable[Permission], scope: Scope) -> JobFilter:
    """``allows(grants, scope, family, version)`` as a predicate for listing many jobs: the
    grants are gathered once into sets, so that each job costs a few set lookups instead of a
    walk over every grant.

    A grant limited to an endpoint covers no whole job (``allows`` with no endpoint refuses
    it), so it never lets a job through here either.
    """
    every_job = False
    families: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    any_family_versions: set[str] = set()  # a version grant without a family, as allows reads it
    for grant in grants:
        if grant.scope not in (scope, Scope.FULL_ACCESS) or grant.endpoint is not None:
            continue
        if grant.job_family is None:
            if grant.job_version is None:
                every_job = True
            else:
                any_family_versions.add(grant.job_version)
        elif grant.job_version is None:
            families.add(grant.job_family)
        else:
            pairs.add((grant.job_family, grant.job_version))
    if every_job:
        return lambda family, version: True

    def covers(family: str, version: str | None) -> bool:
        if family in families:
            return True
        return version is not None and (
            (family, version) in pairs or version in any_family_versions
        )

    return covers


def family_filter(grants: Iterable[Permission], scope: Scope) -> Callable[[str], bool]:
    """Whether some grant of ``scope`` (or ``full_access``) could cover a version of a family:
    one on every job or on that family, whatever its version or endpoint. The question that
    ``authorize_family`` asks before a lookup, as a predicate for listing many families."""
    families: set[str | None] = {
        grant.job_family for grant in grants if grant.scope in (scope, Scope.FULL_ACCESS)
    }
    if None in families:
        return lambda family: True
    return families.__contains__


def authorize(
    session: Session,
    caller: Caller,
    scope: Scope,
    family: str | None = None,
    version: str | None = None,
    endpoint: str | None = None,
) -> None:
    """Raise Forbidden unless ``caller`` may use ``scope`` on this job (and endpoint)."""
    if caller.is_staff or caller.kind == "internal":
        return
    if allows(grants_of(session, caller), scope, family, version, endpoint):
        return
    what = "every job" if family is None else f"job {family}" + (f" {version}" if version else "")
    raise Forbidden(
        f"{caller.label} has no permission '{scope}' on {what}; ask an administrator to grant it"
    )


def authorize_family(session: Session, caller: Caller, scope: Scope, family: str) -> None:
    """Raise Forbidden unless some grant of ``scope`` could cover a version of ``family``.

    Checked before looking a job up, so that a caller without access learns nothing about
    which jobs exist (the same 403 whether the family exists or not).
    """
    if caller.is_staff or caller.kind == "internal":
        return
    if family_filter(grants_of(session, caller), scope)(family):
        return
    raise Forbidden(
        f"{caller.label} has no permission '{scope}' on job {family}; "
        "ask an administrator to grant it"
    )


def grant(
    session: Session,
    kind: SubjectKind,
    name: str,
    scope: Scope,
    *,
    family: str | None = None,
    version: str | None = None,
    endpoint: str | None = None,
    granted_by: str | None = None,
) -> Permission:
    """Add a grant unless the very same one exists; return it. The caller commits."""
    existing = find_grant(
        session, kind, name, scope, family=family, version=version, endpoint=endpoint
    )
    if existing is not None:
        return existing
    permission = Permission(
        subject_kind=kind,
        subject_name=name,
        scope=scope,
        job_family=family,
        job_version=version,
        endpoint=endpoint,
        granted_by=granted_by,
    )
    session.add(permission)
    return permission


def grant_new_user(session: Session, username: str) -> None:
    for scope in NEW_USER_SCOPES:
        grant(session, SubjectKind.USER, username, scope)


def grant_family_owner(session: Session, caller: Caller, family: str) -> None:
    if caller.kind != "user":
        return
    for scope in FAMILY_OWNER_SCOPES:
        grant(session, SubjectKind.USER, caller.name, scope, family=family)


ADMIN_SCOPES = (Scope.CALL_ADMIN_API, Scope.FULL_ACCESS)


def is_admin(session: Session, caller: Caller) -> bool:
    """Whether ``caller`` may use the administration routes: staff, the services' internal
    caller, or a subject granted ``call_admin_api`` or ``full_access`` on every job."""
    if caller.is_staff or caller.kind == "internal":
        return True
    return any(
        grant.scope in ADMIN_SCOPES and grant.job_family is None
        for grant in grants_of(session, caller)
    )


def authorize_admin(session: Session, caller: Caller) -> None:
    """Raise Forbidden unless ``caller`` may use the administration routes."""
    if not is_admin(session, caller):
        raise Forbidden(
            f"{caller.label} is not a staff member and has no permission '{Scope.CALL_ADMIN_API}'"
            "; ask an administrator"
        )


def subject_label(kind: str, name: str) -> str:
    """A subject as people read it: ``User jane@example.com``, ``ESC billing``."""
    titles = {"user": "User", "esc": "ESC", "job_family": "Job family"}
    return f"{titles.get(kind, kind)} {name}"


def permission_dto(permission: Permission) -> dict[str, Any]:
    """A grant as the API shows it."""
    return {
        "id": permission.id,
        "subject_kind": permission.subject_kind,
        "subject_name": permission.subject_name,
        "subject": subject_label(permission.subject_kind, permission.subject_name),
        "scope": permission.scope,
        "job_family": permission.job_family,
        "job_version": permission.job_version,
        "endpoint": permission.endpoint,
        "create_time": int(permission.created_at),
        "granted_by": permission.granted_by,
    }


def find_grant(
    session: Session,
    kind: SubjectKind,
    name: str,
    scope: Scope,
    *,
    family: str | None = None,
    version: str | None = None,
    endpoint: str | None = None,
) -> Permission | None:
    """The very grant described, if it exists."""
    return session.exec(
        select(Permission).where(
            Permission.subject_kind == kind,
            Permission.subject_name == name,
            Permission.scope == scope,
            Permission.job_family == family,
            Permission.job_version == version,
            Permission.endpoint == endpoint,
        )
    ).first()


def owned_families(grants: Iterable[Permission]) -> set[str]:
    """The families a subject holds ``deploy_job``, ``delete_job`` or ``full_access`` on by
    name (as the user who deployed a family first does)."""
    return {
        grant.job_family
        for grant in grants
        if grant.job_family is not None
        and grant.scope in (Scope.DEPLOY_JOB, Scope.DELETE_JOB, Scope.FULL_ACCESS)
    }
