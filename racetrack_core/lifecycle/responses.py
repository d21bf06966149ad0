"""JSON answers and the errors that become them, as the wire rules in DESIGN.md require.

Every answer is JSON with a Content-Type (an empty answer is ``null``); an error is
``{"error": "<sentence>", "type": "<kind>"}`` with 400, 401, 403, 404, 409 or 413, and 503 when
the database cannot be reached. Anything unexpected is logged with its traceback and answered
with a 500 that shows no internals.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import sqlalchemy.exc
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from racetrack_core.errors import RacetrackError
from racetrack_core.lifecycle import json_schemas
from racetrack_core.lifecycle.openapi import declared_body

log = logging.getLogger("racetrack.lifecycle")


class ApiError(RacetrackError):
    """An error answered to the client; subclasses set the status code and the type name."""

    status = 400
    kind = "BadRequest"


class BadRequest(ApiError):
    status = 400
    kind = "BadRequest"


class Unauthenticated(ApiError):
    status = 401
    kind = "Unauthenticated"


class AwaitingActivation(Unauthenticated):
    """The credentials are right, but no staff member has activated the account yet."""

    kind = "AwaitingActivation"


class Forbidden(ApiError):
    status = 403
    kind = "Forbidden"


class NotFound(ApiError):
    status = 404
    kind = "NotFound"


class Conflict(ApiError):
    status = 409
    kind = "Conflict"


class PayloadTooLarge(ApiError):
    status = 413
    kind = "PayloadTooLarge"


class Unavailable(ApiError):
    status = 503
    kind = "Unavailable"


class JSONAnswer(Response):
    """A JSON response; ``None`` is sent as ``null`` so that every answer has a body."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def error_answer(status: int, message: str, kind: str, **extra: Any) -> JSONAnswer:
    return JSONAnswer({"error": message, "type": kind, **extra}, status_code=status)


async def handle_api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_answer(exc.status, str(exc), exc.kind)


_HTTP_KINDS = {404: "NotFound", 405: "MethodNotAllowed", 400: "BadRequest", 413: "PayloadTooLarge"}


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"no such endpoint: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    kind = _HTTP_KINDS.get(exc.status_code, "HTTPError")
    return error_answer(exc.status_code, message, kind)


#: Database errors that mean "unreachable for now", not "this request is wrong": a lost or
#: refused connection (OperationalError, InterfaceError), a pool with no connection to give.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
)


async def handle_database_unavailable(request: Request, exc: Exception) -> Response:
    """503 for a database that cannot be reached; the driver's message stays in the log (it
    names hosts and ports), and the next request tries again (pooled connections are checked
    before use)."""
    log.warning(
        "the database is unavailable answering %s %s: %s",
        request.method,
        request.url.path,
        str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
    )
    answer = error_answer(
        503,
        "the database is unavailable; try again shortly (the server log has the details)",
        Unavailable.kind,
    )
    answer.headers["Retry-After"] = "5"
    return answer


async def handle_database_error(request: Request, exc: Exception) -> Response:
    """Any other database error: 503 when the driver lost its connection (an unreadable SQLite
    file counts, see ``storage.database``), else a bug (500)."""
    if getattr(exc, "connection_invalidated", False):
        return await handle_database_unavailable(request, exc)
    return await handle_unexpected(request, exc)


async def handle_target_unavailable(request: Request, exc: Exception) -> Response:
    """503 for an infrastructure target that cannot do what a request needs (its engine or
    cluster cannot be reached): the driver's sentence names the target and what to do."""
    log.warning("a target failed answering %s %s: %s", request.method, request.url.path, exc)
    answer = error_answer(503, str(exc), Unavailable.kind)
    answer.headers["Retry-After"] = "5"
    return answer


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error answering %s %s", request.method, request.url.path)
    return error_answer(
        500, "internal server error; the server log has the details", "InternalError"
    )


MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects accepted in a request body (a manifest needs 4)."""


def _nests_within(data: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``data`` nests no more than ``limit`` levels deep (checked without recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return False
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
    return True


async def read_json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or BadRequest saying what is wrong with it."""
    body = await request.body()
    if not body:
        raise BadRequest("the request body is empty; send a JSON object")
    too_deep = False
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    except RecursionError:  # deeper than the parser goes
        data, too_deep = None, True
    if too_deep or not _nests_within(data):
        raise BadRequest(
            f"the request body nests JSON arrays or objects more than {MAX_JSON_DEPTH} levels "
            "deep; send a flatter document"
        )
    if not isinstance(data, dict):
        raise BadRequest(f"the request body must be a JSON object, not {type(data).__name__}")
    check_declared_body(request.scope.get("endpoint"), data)
    return data


def check_declared_body(endpoint: object, data: dict[str, Any]) -> None:
    """BadRequest naming the first field of ``data`` that breaks the body schema ``endpoint``
    declared for its OpenAPI document (``racetrack_core.lifecycle.openapi.schemas``)."""
    schema = declared_body(endpoint)
    if schema is not None and (sentence := json_schemas.problem(schema, data)) is not None:
        raise BadRequest(sentence)
