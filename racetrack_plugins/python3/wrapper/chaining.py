"""Job-to-job calls: ``call_job`` reaches another job through Pub as this job's family.

Racetrack gives every job family its own token (``AUTH_TOKEN``) and the address of Pub
(``PUB_URL``). ``call_job("primer", payload={"number": 7})`` sends
``POST {PUB_URL}/job/primer/latest/api/v1/perform`` with that token, so Pub checks that this
family holds a ``call_job`` grant on the other one, and passes on the request-tracing id of the
call being served, so that one id follows a request through every job it reaches. Pub itself
names the caller to the other job (``X-Caller-Name: Job family <name>``); a job cannot claim
another name. The answer's JSON is returned; any other answer raises ``JobCallError`` with
the job, the status and Pub's (or the job's) error message.

The tracing id of the call in progress is kept in a context variable: ``calls.CallService``
binds it for the duration of each call, and ``workers.WorkerThreads`` runs ``def`` methods in
a copy of the caller's context, so the helper finds it in a worker thread too.

Only the standard library is used (``urllib``), so the job's environment needs nothing more.
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from contextvars import ContextVar, Token
from typing import Any

from starlette.types import Scope

from .errors import WrapperError

__all__ = [
    "JobCallError",
    "bind_tracing_id",
    "call_job",
    "call_job_async",
    "current_tracing_id",
    "reset_tracing_id",
    "send",
]

AUTH_HEADER = "X-Racetrack-Auth"
DEFAULT_TRACING_HEADER = "X-Request-Tracing-Id"
#: Longest error text quoted from an answer that is not Racetrack's JSON error.
_QUOTE_LIMIT = 300

_tracing_id: ContextVar[str | None] = ContextVar("racetrack_tracing_id", default=None)
#: Pub is on the job's own network: never send its calls through an HTTP(S)_PROXY.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class JobCallError(WrapperError, RuntimeError):
    """A call to another job did not answer with JSON and a 2xx status.

    ``status`` is the HTTP status (``None`` when Pub could not be reached or the answer was not
    JSON); ``error`` is the message of the layer that refused the call (Pub or the job).
    """

    def __init__(
        self, job_name: str, version: str, path: str, status: int | None, error: str
    ) -> None:
        self.job_name = job_name
        self.version = version
        self.path = path
        self.status = status
        self.error = error
        outcome = f"answered {status}" if status is not None else "failed"
        super().__init__(f"calling job {job_name} {version} {path} {outcome}: {error}")


def _tracing_header_from_env() -> tuple[str, bytes]:
    name = os.environ.get("REQUEST_TRACING_HEADER") or DEFAULT_TRACING_HEADER
    return name, name.lower().encode("latin-1")


#: The tracing header's name and its ASGI key, read once: every call looks for it.
_tracing = _tracing_header_from_env()


def tracing_header() -> str:
    """The header that carries the request-tracing id (``REQUEST_TRACING_HEADER``)."""
    return _tracing[0]


def current_tracing_id() -> str | None:
    """The tracing id of the call this code serves, if it came with one."""
    return _tracing_id.get()


def bind_tracing_id(scope: Scope) -> Token[str | None]:
    """Keep the tracing id of the call in ``scope`` for ``call_job``; undo with the token."""
    key = _tracing[1]
    value = None
    for name, raw in scope["headers"]:
        if name == key:
            value = raw.decode("latin-1")
            break
    return _tracing_id.set(value)


def reset_tracing_id(token: Token[str | None]) -> None:
    _tracing_id.reset(token)


def call_job(
    job_name: str,
    path: str = "/api/v1/perform",
    payload: Any = None,
    *,
    version: str = "latest",
    method: str = "POST",
    timeout: float = 10.0,
) -> Any:
    """Call another job through Pub as this job's family; return its JSON answer.

    ``version`` is exact, ``latest`` or a pattern like ``1.x``; ``payload`` is sent as JSON
    (nothing is sent when it is ``None``). Raise ``JobCallError`` naming the job, the status and
    the error when the answer is not a 2xx with JSON (or no body). The calling family needs a
    ``call_job`` grant on ``job_name``; ask an administrator for it.
    """
    url, request_path = _url(job_name, version, path)
    data = None if payload is None else json.dumps(payload).encode()
    status, body = send(url, method, data, timeout, job_name, version, request_path)
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except ValueError:
        raise JobCallError(
            job_name, version, request_path, status, f"the answer is not JSON: {_quote(body)}"
        ) from None


async def call_job_async(
    job_name: str,
    path: str = "/api/v1/perform",
    payload: Any = None,
    *,
    version: str = "latest",
    method: str = "POST",
    timeout: float = 10.0,
) -> Any:
    """``call_job`` for ``async def`` methods: the call waits in a thread, not on the loop."""
    # asyncio.to_thread runs in a copy of this context: the tracing id goes along.
    return await asyncio.to_thread(
        call_job, job_name, path, payload, version=version, method=method, timeout=timeout
    )


def send(
    url: str,
    method: str,
    data: bytes | None,
    timeout: float,
    job_name: str,
    version: str,
    path: str,
) -> tuple[int, bytes]:
    """Send one request to Pub with this job's headers; return the status and the body.

    An answer other than 2xx, or no answer, raises ``JobCallError`` naming the job, the
    version and ``path`` (the job's path that the call was for).
    """
    # _url accepts only an http(s) PUB_URL.
    request = urllib.request.Request(url, data=data, method=method.upper())  # noqa: S310
    for name, value in _headers(has_body=data is not None).items():
        request.add_header(name, value)
    try:
        with _opener.open(request, timeout=timeout) as answer:
            return int(answer.status), answer.read()
    except urllib.error.HTTPError as error:
        try:
            body = error.read()
        finally:
            error.close()
        raise JobCallError(
            job_name, version, path, error.code, _error_message(body, error.reason)
        ) from None
    except (urllib.error.URLError, OSError) as error:
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        raise JobCallError(
            job_name, version, path, None, f"cannot reach Pub at {url}: {reason}"
        ) from None


def _url(job_name: str, version: str, path: str) -> tuple[str, str]:
    pub_url = os.environ.get("PUB_URL", "").rstrip("/")
    if not pub_url:
        raise WrapperError(
            "PUB_URL is not set: call_job works in a job that Racetrack deployed (or set "
            "PUB_URL, like http://127.0.0.1:7105/pub, and AUTH_TOKEN yourself)"
        )
    if not pub_url.startswith(("http://", "https://")):
        raise WrapperError(f"PUB_URL must be an http:// or https:// URL, got {pub_url!r}")
    if not job_name or "/" in job_name:
        raise WrapperError(f"call_job needs a job name without '/', got {job_name!r}")
    path = "/" + path.lstrip("/")
    quoted = urllib.parse.quote(job_name, safe="") + "/" + urllib.parse.quote(version, safe="")
    return f"{pub_url}/job/{quoted}{path}", path


def _headers(*, has_body: bool) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if has_body:
        headers["Content-Type"] = "application/json"
    token = os.environ.get("AUTH_TOKEN")
    if token:
        headers[AUTH_HEADER] = token
    tracing_id = _tracing_id.get()
    if tracing_id:
        headers[tracing_header()] = tracing_id
    caller = os.environ.get("JOB_NAME")
    if caller:
        version = os.environ.get("JOB_VERSION", "")
        headers["User-Agent"] = f"racetrack-job/{caller}" + (f" ({version})" if version else "")
    return headers


def _error_message(body: bytes, reason: object) -> str:
    """Pub's or the job's ``{"error": ...}`` message, else the start of the body or the reason."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        return str(parsed["error"])
    return _quote(body) if body.strip() else str(reason)


def _quote(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    return text if len(text) <= _QUOTE_LIMIT else text[:_QUOTE_LIMIT] + "..."
