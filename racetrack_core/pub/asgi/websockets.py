"""WebSocket calls through Pub: a handshake to ``/pub/job/{name}/{version}/{path}``, relayed.

The handshake is authorised exactly like an HTTP call: the token comes from the header
``X-Racetrack-Auth``, a legacy header, or the ``X-Racetrack-Auth`` cookie (a browser cannot set
headers on a handshake, so the cookie is how a dashboard user's page calls a job); never from
the URL. A refused handshake gets Pub's usual JSON error as an HTTP answer when the server
offers ASGI's ``websocket.http.response`` extension (uvicorn does), and otherwise a close with
code 1008 (1013 while Lifecycle is unreachable) and the same message as its reason.

An allowed handshake is repeated to the job (at its resolved version, through Pub's aiohttp
session, with the caller's subprotocols and an HTTP call's headers, never the token). The
caller is accepted with the job's subprotocol, then messages are relayed both ways until one
side closes; its close code and reason go to the other. A job that cannot be reached is
reported by accepting the caller and closing at once with 1011 and a reason naming the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import aiohttp
from yarl import URL

from racetrack_core.pub import failures
from racetrack_core.pub.asgi.responses import Receive, Scope, Send
from racetrack_core.pub.config import PubConfig
from racetrack_core.pub.headers import (
    CallReader,
    IncomingCall,
    job_request_headers,
)
from racetrack_core.pub.jobcalls import (
    JobPath,
    Refusal,
    ask_again,
    authorise,
    describe_failure,
    parse_job_path,
)
from racetrack_core.pub.metrics import Metrics
from racetrack_core.pub.permissions import Grant, Permissions

logger = logging.getLogger("racetrack.pub")

#: Handshake headers that aiohttp writes itself for the job's side of the call.
_HANDSHAKE_HEADERS = frozenset(
    b"sec-websocket-" + name for name in (b"key", b"version", b"extensions", b"protocol", b"accept")
)
#: Close codes that say how a connection ended but may not be sent in a close frame.
_UNSENDABLE = {1005: 1000, 1006: 1011, 1015: 1011}
_POLICY_VIOLATION = 1008
_TRY_AGAIN_LATER = 1013
_INTERNAL_ERROR = 1011
_GOING_AWAY = 1001
#: A close frame's reason is at most 123 bytes of UTF-8 (RFC 6455, 5.5).
_REASON_LIMIT = 123
#: The largest message relayed from a job, as uvicorn's default limit is for callers.
_MAX_MESSAGE = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Closed:
    """How a relayed connection ended: which side closed, with which code and reason."""

    by_caller: bool
    code: int
    reason: str


class WebSocketProxy:
    """Relays WebSocket calls to jobs, after Lifecycle allows them."""

    def __init__(
        self,
        config: PubConfig,
        session: aiohttp.ClientSession,
        permissions: Permissions,
        metrics: Metrics,
    ) -> None:
        self._session = session
        self._permissions = permissions
        self._metrics = metrics
        self._connect_timeout = config.connect_timeout
        self._upstream_timeout = config.upstream_timeout
        self._calls = CallReader.of(config.request_tracing_header, _HANDSHAKE_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        """Answer a handshake; ``path`` is the request path after ``/job/``, still encoded."""
        if (await receive())["type"] != "websocket.connect":
            return  # the caller left before its handshake was answered
        call, tracing = self._calls.read(scope)
        target = parse_job_path(path)
        if target is None:
            await _refuse(scope, send, 404, failures.NOT_A_JOB_PATH, tracing)
            return
        verdict = await authorise(
            self._permissions, self._metrics, target, call.token, call.tracing_id
        )
        if isinstance(verdict, Refusal):
            await _refuse(scope, send, verdict.status, verdict.message, tracing)
            return
        await self._connect(scope, receive, send, verdict, target, call, tracing)

    async def _connect(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        grant: Grant,
        target: JobPath,
        call: IncomingCall,
        tracing: list[tuple[bytes, bytes]],
    ) -> None:
        started = time.perf_counter()
        proto = "https" if scope.get("scheme") == "wss" else "http"
        headers = job_request_headers(call, grant.caller, proto, self._calls.header)
        query = scope.get("query_string", b"")
        suffix = target.tail + ("?" + query.decode("latin-1") if query else "")
        retried = False
        while True:
            url = URL(
                f"{grant.base_url}/pub/job/{grant.job_name}/{grant.job_version}{suffix}",
                encoded=True,
            )
            try:
                job = await self._session.ws_connect(
                    url,
                    protocols=scope.get("subprotocols") or (),
                    headers=headers,
                    max_msg_size=_MAX_MESSAGE,
                )
            except aiohttp.ClientConnectorError as error:
                if not retried:
                    retried = True
                    grant = await ask_again(
                        self._permissions, target, call.token, call.tracing_id, grant
                    )
                    continue
                failure: BaseException = error
            except aiohttp.WSServerHandshakeError as error:
                # The job answered, but not with a WebSocket: count its status like an answer.
                self._metrics.record_call(
                    grant.job_name, grant.job_version, error.status, time.perf_counter() - started
                )
                what = f"refused the WebSocket handshake with {error.status}"
                await self._fail(send, grant, what, tracing, error, kind=None)
                return
            except (TimeoutError, aiohttp.ClientError, OSError) as error:
                failure = error
            else:
                break
            described = describe_failure(failure, self._connect_timeout, self._upstream_timeout)
            await self._fail(send, grant, described.what, tracing, failure, described.kind)
            return
        self._metrics.record_call(
            grant.job_name, grant.job_version, 101, time.perf_counter() - started
        )
        async with job:
            await send(
                {"type": "websocket.accept", "subprotocol": job.protocol, "headers": tracing}
            )
            closed = await _relay(receive, send, job)
            if closed.by_caller:
                await job.close(code=closed.code, message=closed.reason.encode())
            else:
                await _close_caller(send, closed.code, closed.reason)
            if closed.code == _INTERNAL_ERROR and not closed.by_caller:
                logger.warning(
                    "job %s %s: WebSocket ended with %s",
                    grant.job_name,
                    grant.job_version,
                    closed.reason or job.exception(),
                )

    async def _fail(
        self,
        send: Send,
        grant: Grant,
        what: str,
        tracing: list[tuple[bytes, bytes]],
        error: BaseException,
        kind: str | None,
    ) -> None:
        """Tell the caller the job failed its side: accept, then close with 1011 and why."""
        if kind is not None:
            self._metrics.record_upstream_error(grant.job_name, grant.job_version, kind)
        logger.warning(
            "job %s %s at %s %s: %r", grant.job_name, grant.job_version, grant.base_url, what, error
        )
        await send({"type": "websocket.accept", "headers": tracing})
        reason = failures.job_failure(grant.job_name, grant.job_version, what)
        await _close_caller(send, _INTERNAL_ERROR, reason)


async def _relay(receive: Receive, send: Send, job: aiohttp.ClientWebSocketResponse) -> _Closed:
    """Relay messages both ways until one side closes; say which side, and how."""
    from_caller = asyncio.ensure_future(_caller_to_job(receive, job))
    from_job = asyncio.ensure_future(_job_to_caller(job, send))
    try:
        done, _ = await asyncio.wait((from_caller, from_job), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (from_caller, from_job):
            task.cancel()
        await asyncio.gather(from_caller, from_job, return_exceptions=True)
    # Both may have ended in one turn of the loop; the caller's word comes first.
    first = from_caller if from_caller in done else from_job
    return first.result()


async def _caller_to_job(receive: Receive, job: aiohttp.ClientWebSocketResponse) -> _Closed:
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.disconnect":
            code = int(message.get("code", 1005))
            return _Closed(True, _sendable(code), str(message.get("reason") or ""))
        if kind != "websocket.receive":
            continue
        try:
            if message.get("text") is not None:
                await job.send_str(message["text"])
            elif message.get("bytes") is not None:
                await job.send_bytes(message["bytes"])
        except (aiohttp.ClientError, OSError, RuntimeError):
            return _job_broke(job)


async def _job_to_caller(job: aiohttp.ClientWebSocketResponse, send: Send) -> _Closed:
    while True:
        message = await job.receive()
        try:
            if message.type is aiohttp.WSMsgType.TEXT:
                await send({"type": "websocket.send", "text": message.data})
                continue
            if message.type is aiohttp.WSMsgType.BINARY:
                await send({"type": "websocket.send", "bytes": message.data})
                continue
        except OSError:  # uvicorn's ClientDisconnected: the caller is gone
            return _Closed(True, _GOING_AWAY, "")
        if message.type is aiohttp.WSMsgType.CLOSE:
            return _Closed(False, _sendable(int(message.data)), str(message.extra or ""))
        ended = message.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED)
        # 1006: the job's connection ended without a close frame, which is a failure.
        if ended and job.close_code and job.close_code != 1006:
            return _Closed(False, _sendable(job.close_code), "")
        return _job_broke(job)


def _sendable(code: int) -> int:
    """``code``, or the code to send for one that a close frame may not carry."""
    return _UNSENDABLE.get(code, code)


def _job_broke(job: aiohttp.ClientWebSocketResponse) -> _Closed:
    error = job.exception()
    detail = f": {type(error).__name__}" if error else ""
    return _Closed(
        False, _INTERNAL_ERROR, f"Reverse proxy error: the job broke the connection{detail}"
    )


async def _close_caller(send: Send, code: int, reason: str) -> None:
    with contextlib.suppress(OSError):  # the caller may be gone already
        await send({"type": "websocket.close", "code": code, "reason": _short(reason)})


async def _refuse(
    scope: Scope, send: Send, status: int, message: str, tracing: list[tuple[bytes, bytes]]
) -> None:
    """Refuse a handshake with Pub's JSON error: as an HTTP answer if the server allows it."""
    if "websocket.http.response" in scope.get("extensions", {}):
        body = failures.json_body(failures.error(message))
        headers = [(b"content-type", failures.JSON_TYPE), (b"content-length", b"%d" % len(body))]
        headers.extend(tracing)
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
        return
    # A close before the handshake reaches a caller as a bare 403: accepting first is the only
    # way to tell it why. Nothing is relayed on this connection.
    await send({"type": "websocket.accept", "headers": tracing})
    await _close_caller(send, _TRY_AGAIN_LATER if status == 503 else _POLICY_VIOLATION, message)


def _short(reason: str) -> str:
    """``reason`` cut to what a close frame can carry, on a character boundary."""
    encoded = reason.encode()
    if len(encoded) <= _REASON_LIMIT:
        return reason
    return encoded[: _REASON_LIMIT - 3].decode(errors="ignore") + "..."
