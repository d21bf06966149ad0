"""When each job version was last called, as Pub reports it (the services' internal token only).

Pub notes the time of every call a job answers and sends what changed, in one batch, every few
seconds (``racetrack_core.pub.calltimes``): no database write per call. Each Pub replica sends
its own batches; a time only ever moves forwards, so replicas may report in any order.

``POST /api/v1/job/call-times``  ``{"calls": [{"name", "version", "last_call_time"}, ...]}``
                                 answers ``{"updated": n}``, the job records that moved

The time reaches users as ``last_call_time`` (unix seconds) in every job record, the field name
of the original Racetrack's API.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import Session, col
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from racetrack_core.lifecycle import answers, bodies
from racetrack_core.lifecycle.context import caller_of, service_of
from racetrack_core.lifecycle.deploy_routes import read_json_body
from racetrack_core.lifecycle.openapi import schemas
from racetrack_core.lifecycle.responses import BadRequest, Forbidden, JSONAnswer
from racetrack_core.storage.models import Job

#: Entries in one report; Pub sends at most this many per batch.
MAX_CALLS = 1000
#: How far ahead of Lifecycle's clock a reported time may be before it is cut back to now.
CLOCK_SKEW = 60.0


@schemas(body=bodies.CallTimes, answer=answers.Updated)
def record_call_times(request: Request) -> JSONAnswer:
    """Move each named job version's last call time forwards (Pub only)."""
    caller = caller_of(request)
    if caller.kind != "internal":
        raise Forbidden(
            f"{caller.label} may not report call times; only Pub may (with the services' "
            "internal token)"
        )
    calls = _calls(read_json_body(request))
    updated = 0
    with Session(service_of(request).engine) as session:
        for name, version, when in calls:
            result = session.exec(
                update(Job)
                .where(col(Job.name) == name, col(Job.version) == version)
                .where(or_(col(Job.last_call_at).is_(None), col(Job.last_call_at) < when))
                .values(last_call_at=when)
            )
            updated += result.rowcount or 0
        session.commit()
    return JSONAnswer({"updated": updated})


def _calls(data: dict[str, Any]) -> list[tuple[str, str, float]]:
    if set(data) != {"calls"} or not isinstance(data["calls"], list):
        raise BadRequest('the body must be {"calls": [{name, version, last_call_time}, ...]}')
    if len(data["calls"]) > MAX_CALLS:
        raise BadRequest(f"field 'calls' holds {len(data['calls'])} entries; at most {MAX_CALLS}")
    latest = time.time() + CLOCK_SKEW
    found = []
    for index, entry in enumerate(data["calls"]):
        where = f"calls[{index}]"
        if not isinstance(entry, dict) or set(entry) != {"name", "version", "last_call_time"}:
            raise BadRequest(f"{where} must be an object with name, version and last_call_time")
        name, version, when = entry["name"], entry["version"], entry["last_call_time"]
        if not isinstance(name, str) or not 0 < len(name) <= 64:
            raise BadRequest(f"{where}.name must be a job name (text of 1 to 64 characters)")
        if not isinstance(version, str) or not 0 < len(version) <= 128:
            raise BadRequest(f"{where}.version must be a job version (1 to 128 characters)")
        if isinstance(when, bool) or not isinstance(when, int | float) or when <= 0:
            raise BadRequest(f"{where}.last_call_time must be a positive number of unix seconds")
        found.append((name, version, min(float(when), latest)))
    return found


def routes() -> list[BaseRoute]:
    return [Route("/api/v1/job/call-times", record_call_times, methods=["POST"])]
