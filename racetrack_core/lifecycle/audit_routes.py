"""Routes of the Lifecycle API: the audit log, filtered by job and by "related to me".

Staff see every event. Others see the events of jobs they may read (``read_job``) and the
events they caused or that concern them.
"""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, col, or_, select
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from racetrack_core.auth import Caller
from racetrack_core.lifecycle import answers, bodies
from racetrack_core.lifecycle.context import caller_of, service_of
from racetrack_core.lifecycle.openapi import schemas
from racetrack_core.lifecycle.permissions import (
    JobFilter,
    grants_of,
    is_admin,
    owned_families,
    scope_filter,
)
from racetrack_core.lifecycle.responses import BadRequest, JSONAnswer
from racetrack_core.storage.models import AuditEvent, Scope

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
BATCH = 500

#: How each kind of event reads, from its actor, job and subject.
SENTENCES = {
    "job_deployed": "{actor} deployed job {job}",
    "job_redeployed": "{actor} redeployed job {job}",
    "job_deleted": "{actor} deleted job {job}",
    "job_moved": "{actor} moved job {job}",
    "deployment_failed": "{actor}'s deployment of job {job} failed",
    "plugin_installed": "{actor} installed plugin {subject}",
    "plugin_uninstalled": "{actor} uninstalled plugin {subject}",
    "permission_granted": "{actor} granted {subject} a permission{on}",
    "permission_revoked": "{actor} revoked a permission of {subject}{on}",
    "user_registered": "{subject} registered",
    "user_activated": "{actor} activated user {subject}",
    "user_deactivated": "{actor} deactivated user {subject}",
    "token_created": "{actor} created a token for {subject}",
    "token_revoked": "{actor} revoked a token of {subject}",
    "public_endpoint_approved": "{actor} approved a public endpoint of job {job}",
}


def explain(event: AuditEvent, details: dict[str, Any]) -> str:
    """One sentence saying what happened."""
    job = " ".join(part for part in (event.job_name, event.job_version) if part)
    scope = details.get("scope") or (details.get("grant") or {}).get("scope")
    on = f" '{scope}'" if scope else ""
    on += f" on job {job}" if job else (" on every job" if "grant" in details else "")
    template = SENTENCES.get(event.kind, "{actor}: " + event.kind.replace("_", " "))
    return template.format(
        actor=event.actor or "someone", job=job, subject=event.subject or "-", on=on
    )


def event_dto(event: AuditEvent) -> answers.EventRecord:
    try:
        details = json.loads(event.details or "{}")
    except json.JSONDecodeError:
        details = {}
    return {
        "id": event.id,
        "time": int(event.time),
        "kind": event.kind,
        "actor": event.actor,
        "job_name": event.job_name,
        "job_version": event.job_version,
        "subject": event.subject,
        "details": details,
        "explanation": explain(event, details if isinstance(details, dict) else {}),
    }


def _visible(
    event: AuditEvent,
    caller: Caller,
    readable: JobFilter,
    owned: set[str],
    related_only: bool,
) -> bool:
    mine = event.actor == caller.name or event.subject in (caller.name, caller.label)
    if related_only:
        return mine or (event.job_name is not None and event.job_name in owned)
    if mine:
        return True
    return event.job_name is not None and readable(event.job_name, event.job_version)


@schemas(query=bodies.ActivityQuery, answer=answers.Activity)
def activity(request: Request) -> JSONAnswer:
    """Audit events, newest first: ``?job_name=&job_version=&related_to_me=true&limit=100``."""
    caller = caller_of(request)
    params = request.query_params
    job_name = params.get("job_name") or None
    job_version = params.get("job_version") or None
    related = params.get("related_to_me", "").lower() in {"1", "true", "yes"}
    try:
        limit = int(params.get("limit", DEFAULT_LIMIT))
    except ValueError:
        raise BadRequest("query parameter 'limit' must be a whole number") from None
    if not 0 < limit <= MAX_LIMIT:
        raise BadRequest(f"query parameter 'limit' must be from 1 to {MAX_LIMIT}")
    with Session(service_of(request).engine) as session:
        admin = is_admin(session, caller)
        grants = grants_of(session, caller)
        readable = scope_filter(grants, Scope.READ_JOB)
        owned = owned_families(grants)
        query = select(AuditEvent)
        if job_name:
            query = query.where(AuditEvent.job_name == job_name)
        if job_version:
            query = query.where(AuditEvent.job_version == job_version)
        if not admin or related:
            # Narrow in SQL what the filter in Python then decides exactly.
            query = query.where(
                or_(
                    col(AuditEvent.actor) == caller.name,
                    col(AuditEvent.subject).in_([caller.name, caller.label]),
                    col(AuditEvent.job_name).is_not(None),
                )
            )
        query = query.order_by(col(AuditEvent.time).desc(), col(AuditEvent.id))
        events: list[answers.EventRecord] = []
        offset = 0
        while len(events) < limit:
            rows = list(session.exec(query.offset(offset).limit(BATCH)))
            for row in rows:
                if (admin and not related) or _visible(row, caller, readable, owned, related):
                    events.append(event_dto(row))
                    if len(events) == limit:
                        break
            if len(rows) < BATCH:
                break
            offset += BATCH
    return JSONAnswer(
        {
            "filter_job_name": job_name,
            "filter_job_version": job_version,
            "filter_related_to_me": related,
            "events": events,
        }
    )


def routes() -> list[BaseRoute]:
    return [Route("/api/v1/audit/activity", activity, methods=["GET"])]
