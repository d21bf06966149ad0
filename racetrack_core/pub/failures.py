"""What Pub says when it answers in place of a job: the sentences and the JSON error payload.

Every path uses these: HTTP calls on the front server (:mod:`racetrack_core.pub.front`) and on
the ASGI app (:mod:`racetrack_core.pub.asgi.proxy`), WebSocket calls, asynchronous calls, and
the front's forwarding to the app behind it. Pub's own errors are JSON objects with one key,
``error``; a job that did not answer adds ``job_name`` and ``job_version`` (:func:`job_error`).

A job that gave no answer is described by a :class:`Failure`: the HTTP status, the ``kind``
counted in ``pub_job_proxy_errors_total``, and the words that follow the job's name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

JSON_TYPE = b"application/json"

NOT_A_JOB_PATH = "Job was not found: a call's path is /pub/job/{name}/{version}/{path}"
DOT_SEGMENT = (
    "Bad request: the job path has a dot segment ('.' or '..', also percent-encoded); "
    "send the path without them"
)
NOT_AN_ASYNC_JOB_PATH = (
    "Job was not found: an asynchronous call's path is /pub/async/new/job/{name}/{version}/{path}"
)
NOT_STARTED = "Pub is not started (no lifespan)"
FAILED = "Pub failed; see its log"

#: Why an upstream server gave no answer, in the words that follow its name.
REFUSED = "is not reachable (connection refused)"
BROKEN = "broke the connection before answering"
#: The ASGI app behind the front server refused or did not accept the connection.
APP_UNREACHABLE = "is not reachable"


def json_body(payload: object) -> bytes:
    """``payload`` as the compact JSON that both of Pub's servers send."""
    return json.dumps(payload, separators=(",", ":")).encode()


def error(message: str) -> dict[str, object]:
    """Pub's error payload."""
    return {"error": message}


def no_route(path: str) -> dict[str, object]:
    return error(f"Pub has no route {path}")


def get_only(path: str) -> dict[str, object]:
    return error(f"{path} answers GET only")


def cannot_check_permissions(reason: object) -> str:
    """The 503 sentence while Lifecycle cannot be asked about a call."""
    return f"Pub cannot check permissions: {reason}"


def no_connection(connect_timeout: float) -> str:
    return f"is not reachable (no connection within {connect_timeout:g} s)"


def no_answer(timeout: float) -> str:
    return f"did not answer within {timeout:g} s"


@dataclass(frozen=True, slots=True)
class Failure:
    """A job that gave no answer: Pub's status for it, the metric's kind, and why."""

    status: int
    kind: str
    what: str


def refused() -> Failure:
    return Failure(502, "connection_refused", f"{REFUSED}; it may be down")


def unreachable(connect_timeout: float) -> Failure:
    return Failure(502, "connection_refused", no_connection(connect_timeout))


def silent(upstream_timeout: float) -> Failure:
    return Failure(504, "timeout", no_answer(upstream_timeout))


def broken() -> Failure:
    return Failure(502, "connection_broken", f"{BROKEN}; it may have died")


def job_failure(job_name: str, job_version: str, what: str) -> str:
    """The sentence for a call that job ``job_name`` ``job_version`` did not answer."""
    return f"Reverse proxy error: job {job_name} {job_version} {what}"


def job_error(job_name: str, job_version: str, what: str) -> dict[str, object]:
    """The payload of Pub's answer in place of a job that did not answer."""
    return {
        "error": job_failure(job_name, job_version, what),
        "job_name": job_name,
        "job_version": job_version,
    }


def app_error(path: str, what: str) -> dict[str, object]:
    """The front server's payload when the ASGI app behind it did not answer for ``path``."""
    return error(f"Pub cannot answer {path}: its ASGI app {what}; see Pub's log")
