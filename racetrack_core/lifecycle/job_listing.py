"""``GET /api/v1/job_family/jobs``: the jobs a caller may read, grouped by family, filtered,
sorted and cut into pages on the server, so that a page of a listing of thousands of jobs
costs what its own families cost (the Dashboard's jobs list is this route)."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from sqlalchemy import select as select_columns
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from racetrack_core import versions
from racetrack_core.lifecycle import answers, bodies
from racetrack_core.lifecycle.context import caller_of, service_of
from racetrack_core.lifecycle.jobs import job_dto, owner_email
from racetrack_core.lifecycle.openapi import schemas
from racetrack_core.lifecycle.permissions import grants_of, scope_filter
from racetrack_core.lifecycle.responses import BadRequest, JSONAnswer
from racetrack_core.storage.models import Job, JobStatus, Scope

#: How families may be ordered: by their newest update, by name, or problems first.
SORTS = ("updated", "name", "status")
STATUSES = tuple(status.value for status in JobStatus)
PER_PAGE = 50
MAX_PER_PAGE = 500
#: The fields that ``q`` looks in, lower-cased.
SEARCHED = ("name", "version", "owner", "deployed_by", "job_type")
PROBLEMS = (JobStatus.ERROR, JobStatus.LOST)


class Listed(Protocol):
    """What grouping, filtering and sorting read of a job: a few columns, not a whole row."""

    name: str
    version: str
    status: str
    updated_at: float
    manifest_yaml: str
    deployed_by: str | None
    job_type: str


#: The columns of ``Listed``, selected for every job the caller may read.
LISTED_COLUMNS = (
    col(Job.name),
    col(Job.version),
    col(Job.status),
    col(Job.updated_at),
    col(Job.manifest_yaml),
    col(Job.deployed_by),
    col(Job.job_type),
)


@dataclass
class Family:
    name: str
    jobs: list[Listed] = field(default_factory=list)

    @property
    def updated(self) -> float:
        return max(job.updated_at for job in self.jobs)

    @property
    def healthy(self) -> bool:
        return not any(job.status in PROBLEMS for job in self.jobs)


def families_of(jobs: Iterable[Listed], query: str, status: str, sort: str) -> list[Family]:
    """The jobs that match ``query`` (a piece of a name, version, owner, deployer or job type)
    and ``status``, grouped by family, newest version first in each, families in ``sort``
    order."""
    wanted = query.lower()
    grouped: dict[str, Family] = {}
    for job in jobs:
        if status and job.status != status:
            continue
        if wanted and wanted not in _searched_text(job):
            continue
        grouped.setdefault(job.name, Family(job.name)).jobs.append(job)
    for family in grouped.values():
        family.jobs.sort(key=lambda job: version_key(job.version), reverse=True)
    families = sorted(grouped.values(), key=lambda family: family.name)
    if sort == "updated":
        families.sort(key=lambda family: family.updated, reverse=True)
    elif sort == "status":
        families.sort(key=lambda family: family.healthy)
    return families


def _searched_text(job: Listed) -> str:
    values = (job.name, job.version, owner_email(job.manifest_yaml), job.deployed_by, job.job_type)
    return "\n".join(value or "" for value in values).lower()


@functools.lru_cache(maxsize=8192)
def version_key(version: str) -> tuple[int, Any]:
    """Semantic versions in their order, above any other version string."""
    if versions.is_semver(version):
        return (1, versions.parse(version))
    return (0, version)


def _choice(request: Request, name: str, choices: tuple[str, ...], default: str) -> str:
    value = request.query_params.get(name, default)
    if value not in choices:
        raise BadRequest(
            f"query parameter {name!r} must be one of {', '.join(choices)}, not {value!r}"
        )
    return value


def _whole(request: Request, name: str, default: int, largest: int) -> int:
    given = request.query_params.get(name)
    if given is None:
        return default
    try:
        value = int(given)
    except ValueError:
        value = 0
    if not 1 <= value <= largest:
        raise BadRequest(f"query parameter {name!r} must be a whole number from 1 to {largest}")
    return value


@schemas(query=bodies.FamilyPageQuery, answer=answers.FamilyPage)
def family_page(request: Request) -> JSONAnswer:
    """One page of the families the caller may read, with their jobs (records without the
    manifest): ``?q=&status=&sort=updated|name|status&page=1&per_page=50``.

    Answers ``{families: [{name, jobs}], total, matching, matching_families, page, pages,
    per_page}``; a page past the last answers the last.
    """
    service = service_of(request)
    caller = caller_of(request)
    query = request.query_params.get("q", "").strip()
    status = _choice(request, "status", ("", *STATUSES), "")
    sort = _choice(request, "sort", SORTS, "updated")
    per_page = _whole(request, "per_page", PER_PAGE, MAX_PER_PAGE)
    asked = _whole(request, "page", 1, 10**9)
    with Session(service.engine) as session:
        readable = scope_filter(grants_of(session, caller), Scope.READ_JOB)
        columns = session.connection().execute(select_columns(*LISTED_COLUMNS))
        rows = [cast(Listed, row) for row in columns]
        listed = [job for job in rows if caller.is_staff or readable(job.name, job.version)]
        families = families_of(listed, query, status, sort)
        pages = max(1, math.ceil(len(families) / per_page))
        page = min(asked, pages)
        shown = families[(page - 1) * per_page : page * per_page]
        # Whole rows only for the jobs on this page.
        wanted = {(job.name, job.version) for family in shown for job in family.jobs}
        chosen = session.exec(select(Job).where(col(Job.name).in_([f.name for f in shown])))
        full = {(job.name, job.version): job for job in chosen if (job.name, job.version) in wanted}
    pub_url = service.settings.external_pub_url
    return JSONAnswer(
        {
            "families": [
                {
                    "name": family.name,
                    "jobs": [
                        job_dto(full[job.name, job.version], pub_url, manifest=False)
                        for job in family.jobs
                        if (job.name, job.version) in full
                    ],
                }
                for family in shown
            ],
            "total": len(listed),
            "matching": sum(len(family.jobs) for family in families),
            "matching_families": len(families),
            "page": page,
            "pages": pages,
            "per_page": per_page,
        }
    )


def routes() -> list[BaseRoute]:
    return [Route("/api/v1/job_family/jobs", family_page, methods=["GET"])]
