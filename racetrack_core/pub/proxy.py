"""The hot path: authorise a call to ``/pub/job/{name}/{version}/{path}`` and forward it.

One pooled aiohttp session carries every call (chosen by measurement, see docs/pub.md). The
request body and the answer are streamed; answers with a small declared length are read whole
and sent in one piece, which is faster. Only a refused connection is retried, once, after
asking Lifecycle again where the job is (it may have moved). Errors say which layer failed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator

import aiohttp
from yarl import URL

from racetrack_core.pub.config import PubConfig
from racetrack_core.pub.headers import (
    IncomingCall,
    dropped_request_headers,
    read_call,
    response_headers,
)
from racetrack_core.pub.metrics import Metrics
from racetrack_core.pub.permissions import Denial, Grant, LifecycleUnavailable, Permissions
from racetrack_core.pub.responses import Message, Receive, Scope, Send, send_json

logger = logging.getLogger("racetrack.pub")

#: Job names and versions as Lifecycle accepts them (``latest``, ``1.x`` and ``1.2.3-rc.1+b7``).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


class ClientGone(Exception):
    """The caller hung up while its request body was still being forwarded."""


class JobProxy:
    """Forwards calls to jobs, after Lifecycle allows them."""

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
        self._buffer_limit = config.buffer_limit
        self._upstream_timeout = config.upstream_timeout
        self._connect_timeout = config.connect_timeout
        self._tracing_header = config.request_tracing_header
        self._tracing_key = config.request_tracing_header.lower().encode("latin-1")
        self._dropped = dropped_request_headers(self._tracing_key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        """Answer a call; ``path`` is the request path after ``/job/``, still percent-encoded."""
        call = read_call(scope, self._tracing_key, self._dropped)
        tracing = [(self._tracing_key, call.tracing_id.encode("latin-1"))]
        parts = path.split("/", 2)
        if len(parts) < 2 or not _NAME.fullmatch(parts[0]) or not _NAME.fullmatch(parts[1]):
            message = "Job was not found: a call's path is /pub/job/{name}/{version}/{path}"
            await send_json(send, 404, {"error": message}, tracing)
            return
        name, version = parts[0], parts[1]
        tail = "/" + parts[2] if len(parts) == 3 else ""
        if call.wants_websocket:
            message = "WebSocket calls are not supported by Pub yet; call the job over HTTP"
            await send_json(send, 501, {"error": message}, tracing)
            return
        job_path = tail[1:]
        verdict = await self._authorise(send, name, version, job_path, call, tracing)
        if verdict is None:
            return
        await self._forward(scope, receive, send, verdict, name, version, tail, call, tracing)

    async def _authorise(
        self,
        send: Send,
        name: str,
        version: str,
        job_path: str,
        call: IncomingCall,
        tracing: list[tuple[bytes, bytes]],
    ) -> Grant | None:
        try:
            verdict = await self._permissions.check(
                name, version, job_path, call.token, call.tracing_id
            )
        except LifecycleUnavailable as error:
            message = f"Pub cannot check permissions: {error}"
            await send_json(send, 503, {"error": message}, tracing)
            return None
        if isinstance(verdict, Denial):
            job = (name, version) if verdict.job_known else ("-", "-")
            self._metrics.record_auth_failure(*job, verdict.status)
            await send_json(send, verdict.status, {"error": verdict.message}, tracing)
            return None
        return verdict

    async def _forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        grant: Grant,
        name: str,
        version: str,
        tail: str,
        call: IncomingCall,
        tracing: list[tuple[bytes, bytes]],
    ) -> None:
        started = time.perf_counter()
        headers = call.forwarded
        headers.append(("x-forwarded-for", call.forwarded_for))
        if call.forwarded_host:
            headers.append(("x-forwarded-host", call.forwarded_host))
        headers.append(("x-forwarded-proto", scope.get("scheme", "http")))
        headers.append((self._tracing_header, call.tracing_id))
        headers.append(("x-caller-name", grant.caller))
        query = scope.get("query_string", b"")
        suffix = tail + ("?" + query.decode("latin-1") if query else "")
        method = scope["method"]
        first = await receive()
        if first["type"] == "http.disconnect":
            return
        body: bytes = first.get("body", b"")
        streaming = bool(first.get("more_body", False))
        retried = False
        while True:
            url = URL(
                f"{grant.base_url}/pub/job/{grant.job_name}/{grant.job_version}{suffix}",
                encoded=True,
            )
            data = _request_body(body, receive) if streaming else (body or None)
            try:
                async with self._session.request(
                    method, url, headers=headers, data=data, allow_redirects=False
                ) as response:
                    await self._relay(response, grant, started, receive, send, tracing, streaming)
                return
            except aiohttp.ClientConnectorError as error:
                if not retried:
                    retried = True
                    grant = await self._ask_again(name, version, tail[1:], call, grant)
                    continue
                failure: BaseException = error
            except _Relayed:
                raise
            except ClientGone:
                return  # nobody is left to answer
            except (TimeoutError, aiohttp.ClientError, OSError) as error:
                failure = error
            status, kind, what = self._classify(failure)
            await self._fail(send, grant, status, kind, tracing, what, failure)
            return

    def _classify(self, error: BaseException) -> tuple[int, str, str]:
        """Status, metric kind and description of a call the job did not answer."""
        if isinstance(error, aiohttp.ClientConnectorError):
            return (
                502,
                "connection_refused",
                "is not reachable (connection refused); it may be down",
            )
        if isinstance(error, aiohttp.ConnectionTimeoutError):
            waited = f"{self._connect_timeout:g} s"
            return 502, "connection_refused", f"is not reachable (no connection within {waited})"
        if isinstance(error, TimeoutError):
            return 504, "timeout", f"did not answer within {self._upstream_timeout:g} s"
        return 502, "connection_broken", "broke the connection before answering; it may have died"

    async def _ask_again(
        self, name: str, version: str, job_path: str, call: IncomingCall, grant: Grant
    ) -> Grant:
        """Where the job is now, after its address refused a connection."""
        self._permissions.forget(name, version, job_path, call.token)
        try:
            verdict = await self._permissions.check(
                name, version, job_path, call.token, call.tracing_id
            )
        except LifecycleUnavailable:
            return grant
        return verdict if isinstance(verdict, Grant) else grant

    async def _relay(
        self,
        response: aiohttp.ClientResponse,
        grant: Grant,
        started: float,
        receive: Receive,
        send: Send,
        tracing: list[tuple[bytes, bytes]],
        request_streamed: bool,
    ) -> None:
        headers = response_headers(response.raw_headers, grant.base_url)
        headers.extend(tracing)
        status = response.status
        length = response.content_length
        if length is not None and length <= self._buffer_limit:
            body = await response.read()
            self._metrics.record_call(
                grant.job_name, grant.job_version, status, time.perf_counter() - started
            )
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        self._metrics.record_call(
            grant.job_name, grant.job_version, status, time.perf_counter() - started
        )
        await send({"type": "http.response.start", "status": status, "headers": headers})
        try:
            if request_streamed:
                # The request body may still be arriving: receive() is not ours to watch.
                await _pump(response, send)
            else:
                await _pump_until_hangup(response, receive, send)
        except Exception as error:
            # The answer has begun: the only honest report left is an aborted connection.
            logger.warning(
                "job %s %s broke off its answer: %r", grant.job_name, grant.job_version, error
            )
            raise _Relayed(
                f"job {grant.job_name} {grant.job_version} broke off its answer"
            ) from error

    async def _fail(
        self,
        send: Send,
        grant: Grant,
        status: int,
        kind: str,
        tracing: list[tuple[bytes, bytes]],
        what: str,
        error: BaseException,
    ) -> None:
        self._metrics.record_upstream_error(grant.job_name, grant.job_version, kind)
        logger.warning(
            "job %s %s at %s %s: %r", grant.job_name, grant.job_version, grant.base_url, what, error
        )
        message = f"Reverse proxy error: job {grant.job_name} {grant.job_version} {what}"
        payload = {"error": message, "job_name": grant.job_name, "job_version": grant.job_version}
        await send_json(send, status, payload, tracing)


class _Relayed(Exception):
    """An answer failed after it began; the server must abort the connection."""


async def _request_body(first: bytes, receive: Receive) -> AsyncIterator[bytes]:
    if first:
        yield first
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def _pump(response: aiohttp.ClientResponse, send: Send) -> None:
    while chunk := await response.content.readany():
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _pump_until_hangup(
    response: aiohttp.ClientResponse, receive: Receive, send: Send
) -> None:
    """Stream the answer, and stop reading the job as soon as the caller hangs up."""
    pump = asyncio.ensure_future(_pump(response, send))
    hangup = asyncio.ensure_future(receive())
    try:
        await asyncio.wait((pump, hangup), return_when=asyncio.FIRST_COMPLETED)
    finally:
        hangup.cancel()
        if not pump.done():
            pump.cancel()
            response.close()
    if pump.done() and not pump.cancelled():
        pump.result()
