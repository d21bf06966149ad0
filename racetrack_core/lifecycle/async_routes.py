"""Storage of asynchronous job calls, for Pub only (the services' internal token).

Pub stores each call it accepts on ``/pub/async/new/job/...`` here, so that the call survives a
restart of Pub or of Lifecycle, and any Pub replica can answer a poll. Users never reach these
routes: they get 403 even as staff. Bodies travel as base64 inside JSON.

``POST   /api/v1/async/task``         store a new task (201)
``GET    /api/v1/async/task``         ongoing tasks (``?idle_for=S``: untouched for S seconds)
``GET    /api/v1/async/task/{id}``    one task, 404 once expired
``PATCH  /api/v1/async/task/{id}``    attempts, status and answer; ``if_attempts`` makes it
                                      conditional (409 when another worker moved on)
``DELETE /api/v1/async/task``         purge expired tasks, ``{"deleted": n}``

A task's ``id`` is what Pub chooses as the storage key: a digest of the id the caller holds,
never the caller's id itself. A finished task (completed or failed) cannot change again.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from racetrack_core.lifecycle import answers, bodies
from racetrack_core.lifecycle.context import caller_of, service_of
from racetrack_core.lifecycle.deploy_routes import read_json_body
from racetrack_core.lifecycle.openapi import schemas
from racetrack_core.lifecycle.responses import (
    BadRequest,
    Conflict,
    Forbidden,
    JSONAnswer,
    NotFound,
)
from racetrack_core.storage.models import AsyncJobCall

STATUSES = ("ongoing", "completed", "failed")
_KEY = re.compile(r"[A-Za-z0-9_-]{16,32}")
_CREATE_FIELDS = {
    "id",
    "job_name",
    "job_version",
    "method",
    "path",
    "query",
    "request_headers",
    "request_body",
    "caller",
    "lifetime",
}
_UPDATE_FIELDS = {
    "status",
    "attempts",
    "response_status",
    "response_headers",
    "response_body",
    "error",
    "if_attempts",
}


def _internal_only(request: Request) -> None:
    caller = caller_of(request)
    if caller.kind != "internal":
        raise Forbidden(
            f"{caller.label} may not use the asynchronous call storage; only Pub may "
            "(with the services' internal token)"
        )


def task_dto(row: AsyncJobCall, with_bodies: bool = True) -> answers.AsyncTask:
    """A task as JSON; bodies as base64."""
    data: answers.AsyncTask = {
        "id": row.id,
        "job_name": row.job_name,
        "job_version": row.job_version,
        "method": row.method,
        "path": row.path,
        "query": row.query,
        "request_headers": json.loads(row.request_headers or "[]"),
        "caller": row.caller,
        "status": row.status,
        "attempts": row.attempts,
        "response_status": row.response_status,
        "response_headers": json.loads(row.response_headers) if row.response_headers else None,
        "error": row.error,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "expires_at": row.expires_at,
    }
    if with_bodies:
        data["request_body"] = base64.b64encode(row.request_body or b"").decode()
        data["response_body"] = (
            None if row.response_body is None else base64.b64encode(row.response_body).decode()
        )
    return data


def _text(data: dict[str, Any], name: str, limit: int, default: str | None = None) -> str:
    value = data.get(name, default)
    if not isinstance(value, str) or (default is None and not value) or len(value) > limit:
        raise BadRequest(f"field '{name}' must be text of at most {limit} characters")
    return value


def _bytes(data: dict[str, Any], name: str) -> bytes:
    value = data.get(name) or ""
    if not isinstance(value, str):
        raise BadRequest(f"field '{name}' must be base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"field '{name}' is not valid base64") from None


def _headers(data: dict[str, Any], name: str) -> str:
    value = data.get(name) or []
    if not isinstance(value, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) for part in pair)
        for pair in value
    ):
        raise BadRequest(f"field '{name}' must be a list of [name, value] pairs of text")
    return json.dumps(value)


def _unknown(data: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise BadRequest(
            f"unknown field(s) {', '.join(extra)}; known: {', '.join(sorted(allowed))}"
        )


def _key(request: Request) -> str:
    key: str = request.path_params["task_id"]
    if not _KEY.fullmatch(key):
        raise NotFound("no asynchronous task with this id (unknown, or expired)")
    return key


@schemas(body=bodies.NewTask, answer=answers.AsyncTask, status=201)
def create_task(request: Request) -> JSONAnswer:
    """Store a new asynchronous call (Pub only)."""
    _internal_only(request)
    service = service_of(request)
    data = read_json_body(request)
    _unknown(data, _CREATE_FIELDS)
    key = _text(data, "id", 32)
    if not _KEY.fullmatch(key):
        raise BadRequest("field 'id' must be 16 to 32 letters, digits, '-' or '_'")
    lifetime = data.get("lifetime", service.settings.pub.async_call_lifetime)
    if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
        raise BadRequest("field 'lifetime' must be a positive number of seconds")
    now = time.time()
    caller = data.get("caller")
    if caller is not None and (not isinstance(caller, str) or len(caller) > 255):
        raise BadRequest("field 'caller' must be text of at most 255 characters")
    row = AsyncJobCall(
        id=key,
        job_name=_text(data, "job_name", 64),
        job_version=_text(data, "job_version", 128),
        method=_text(data, "method", 16).upper(),
        path=_text(data, "path", 8192, ""),
        query=_text(data, "query", 8192, ""),
        request_headers=_headers(data, "request_headers"),
        request_body=_bytes(data, "request_body"),
        caller=caller,
        created_at=now,
        updated_at=now,
        expires_at=now + float(lifetime),
    )
    with Session(service.engine) as session:
        if session.get(AsyncJobCall, key) is not None:
            raise Conflict("an asynchronous task with this id exists already")
        session.add(row)
        session.commit()
        session.refresh(row)
        return JSONAnswer(task_dto(row), status_code=201)


@schemas(answer=answers.AsyncTask)
def get_task(request: Request) -> JSONAnswer:
    """One asynchronous call, with its answer once it has one (Pub only)."""
    _internal_only(request)
    key = _key(request)
    with Session(service_of(request).engine) as session:
        row = session.get(AsyncJobCall, key)
        if row is None or row.expires_at <= time.time():
            raise NotFound("no asynchronous task with this id (unknown, or expired)")
        return JSONAnswer(task_dto(row))


@schemas(query=bodies.TasksQuery, answer=list[answers.AsyncTask])
def list_tasks(request: Request) -> JSONAnswer:
    """Ongoing asynchronous calls, oldest first; ``idle_for``: untouched for that many s."""
    _internal_only(request)
    status = request.query_params.get("status", "ongoing")
    if status not in STATUSES:
        raise BadRequest(f"query parameter 'status' must be one of {', '.join(STATUSES)}")
    try:
        idle_for = float(request.query_params.get("idle_for", "0"))
    except ValueError:
        raise BadRequest("query parameter 'idle_for' must be a number of seconds") from None
    now = time.time()
    with Session(service_of(request).engine) as session:
        rows = session.exec(
            select(AsyncJobCall)
            .where(
                AsyncJobCall.status == status,
                AsyncJobCall.expires_at > now,
                AsyncJobCall.updated_at <= now - idle_for,
            )
            .order_by(col(AsyncJobCall.created_at))
            .limit(1000)
        )
        return JSONAnswer([task_dto(row) for row in rows])


@schemas(body=bodies.TaskUpdate, answer=answers.AsyncTask)
def update_task(request: Request) -> JSONAnswer:
    """Record an attempt, a heartbeat, or the task's end (Pub only)."""
    _internal_only(request)
    key = _key(request)
    data = read_json_body(request)
    _unknown(data, _UPDATE_FIELDS)
    values: dict[str, Any] = {"updated_at": time.time()}
    status = data.get("status")
    if status is not None:
        if status not in STATUSES:
            raise BadRequest(f"field 'status' must be one of {', '.join(STATUSES)}")
        values["status"] = status
    for name in ("attempts", "response_status", "if_attempts"):
        value = data.get(name)
        if isinstance(value, float) and value.is_integer():
            data[name] = value = int(value)  # JSON does not tell 2.0 from 2; its schemas neither
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise BadRequest(f"field '{name}' must be a whole number")
        if value is not None and name != "if_attempts":
            values[name] = value
    if data.get("response_headers") is not None:
        values["response_headers"] = _headers(data, "response_headers")
    if data.get("response_body") is not None:
        values["response_body"] = _bytes(data, "response_body")
    if data.get("error") is not None:
        values["error"] = _text(data, "error", 4000)
    now = time.time()
    condition = [
        col(AsyncJobCall.id) == key,
        col(AsyncJobCall.status) == "ongoing",
        col(AsyncJobCall.expires_at) > now,
    ]
    if data.get("if_attempts") is not None:
        condition.append(col(AsyncJobCall.attempts) == data["if_attempts"])
    with Session(service_of(request).engine) as session:
        changed = session.exec(update(AsyncJobCall).where(*condition).values(**values)).rowcount
        session.commit()
        row = session.get(AsyncJobCall, key)
        if row is None or row.expires_at <= now:
            raise NotFound("no asynchronous task with this id (unknown, or expired)")
        if not changed:
            raise Conflict(
                f"the task is {row.status} after {row.attempts} attempt(s); "
                "it was finished or taken over by another worker"
            )
        return JSONAnswer(task_dto(row, with_bodies=False))


@schemas(answer=answers.Deleted)
def purge_tasks(request: Request) -> JSONAnswer:
    """Delete every expired asynchronous call (Pub only)."""
    _internal_only(request)
    with Session(service_of(request).engine) as session:
        deleted = session.exec(
            delete(AsyncJobCall).where(col(AsyncJobCall.expires_at) <= time.time())
        ).rowcount
        session.commit()
    return JSONAnswer({"deleted": deleted})


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/async/task", create_task, methods=["POST"]),
        Route("/api/v1/async/task", list_tasks, methods=["GET"]),
        Route("/api/v1/async/task", purge_tasks, methods=["DELETE"]),
        Route("/api/v1/async/task/{task_id}", get_task, methods=["GET"]),
        Route("/api/v1/async/task/{task_id}", update_task, methods=["PATCH"]),
    ]
