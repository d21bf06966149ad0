"""The hot path: authorise a call to ``/pub/job/{name}/{version}/{path}`` and forward it.

One pooled aiohttp session carries every call (chosen by measurement, see docs/pub.md). The
request body and the answer are streamed; answers with a small declared length are read whole
and sent in one piece, which is faster. Only a connection the job did not take is retried: on
the next ready instance of a replicated job, else once after asking Lifecycle again where the
job is (it may have moved). Errors say which layer failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import aiohttp
from yarl import URL

from racetrack_core.pub import failures
from racetrack_core.pub.asgi.responses import Message, Receive, Scope, Send, send_json
from racetrack_core.pub.config import PubConfig
from racetrack_core.pub.headers import (
    CallReader,
    IncomingCall,
    job_answer_headers,
    job_request_headers,
    legacy_route_headers,
    response_headers,
)
from racetrack_core.pub.jobcalls import (
    NOT_ACCEPTED,
    REFUSED,
    JobPath,
    Refusal,
    ask_again,
    authorise,
    describe_failure,
    fail_over,
    parse_job_path,
)
from racetrack_core.pub.metrics import Metrics
from racetrack_core.pub.permissions import Grant, Permissions

logger = logging.getLogger("racetrack.pub")

#: A server without a WebSocket library (or a handshake without ``Connection: Upgrade``)
#: hands Pub a WebSocket handshake as a plain HTTP request.
_NOT_A_HANDSHAKE = (
    "WebSocket handshake not taken: Pub's server has no WebSocket library, or the request "
    "lacks 'Connection: Upgrade'; serve Pub with uvicorn[standard] or call the job over HTTP"
)


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
        self._calls = CallReader.of(config.request_tracing_header)

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, path: str, legacy: bool = False
    ) -> None:
        """Answer a call; ``path`` is the request path after ``/job/`` (or, with ``legacy``,
        after the deprecated ``/fatman/``), still percent-encoded."""
        call, tracing = self._calls.read(scope)
        if legacy:
            tracing += legacy_route_headers(path)
        target = parse_job_path(path)
        if target is None:
            await send_json(send, 404, failures.error(failures.NOT_A_JOB_PATH), tracing)
            return
        if call.wants_websocket:
            await send_json(send, 501, failures.error(_NOT_A_HANDSHAKE), tracing)
            return
        verdict = await authorise(
            self._permissions, self._metrics, target, call.token, call.tracing_id
        )
        if isinstance(verdict, Refusal):
            await send_json(send, verdict.status, failures.error(verdict.message), tracing)
            return
        extra = tracing + job_answer_headers(target.tail)
        await self._forward(scope, receive, send, verdict, target, call, extra)

    async def _forward(
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
        proto = scope.get("scheme", "http")
        headers = job_request_headers(call, grant.caller, proto, self._calls.header)
        query = scope.get("query_string", b"")
        suffix = target.tail + ("?" + query.decode("latin-1") if query else "")
        method = scope["method"]
        first = await receive()
        if first["type"] == "http.disconnect":
            return
        body: bytes = first.get("body", b"")
        streaming = bool(first.get("more_body", False))
        retried = False
        tried: set[str] = set()
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
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as error:
                refused = isinstance(error, aiohttp.ClientConnectorError)
                other = fail_over(
                    self._permissions, grant, tried, REFUSED if refused else NOT_ACCEPTED
                )
                if other is not None:
                    grant = other
                    continue
                if refused and not retried:
                    retried = True
                    grant = await ask_again(
                        self._permissions, target, call.token, call.tracing_id, grant
                    )
                    continue
                failure: BaseException = error
            except _Relayed:
                raise
            except ClientGone:
                return  # nobody is left to answer
            except (TimeoutError, aiohttp.ClientError, OSError) as error:
                failure = error
            described = describe_failure(failure, self._connect_timeout, self._upstream_timeout)
            await self._fail(send, grant, described, tracing, failure)
            return

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
        failure: failures.Failure,
        tracing: list[tuple[bytes, bytes]],
        error: BaseException,
    ) -> None:
        name, version = grant.job_name, grant.job_version
        self._metrics.record_upstream_error(name, version, failure.kind)
        logger.warning("job %s %s at %s %s: %r", name, version, grant.base_url, failure.what, error)
        payload = failures.job_error(name, version, failure.what)
        await send_json(send, failure.status, payload, tracing)


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
