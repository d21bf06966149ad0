"""One call to a job: authorise it, send it on one pooled connection, relay the answer.

The logic is :mod:`racetrack_core.pub.proxy`'s (same checks, same errors, same retry), over
the fast server's own I/O: the request head and a body that has arrived whole leave in one
write; an answer with a small declared length is relayed in one write once complete; anything
larger or unsized is streamed as it comes, both ways, with back-pressure.
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING

from racetrack_core.pub.fastserver import wire
from racetrack_core.pub.fastserver.connection import CallerConnection, Request
from racetrack_core.pub.fastserver.upstream import ConnectTimeout, JobConnection
from racetrack_core.pub.headers import IncomingCall, read_call, response_headers
from racetrack_core.pub.permissions import Denial, Grant, LifecycleUnavailable

if TYPE_CHECKING:
    from racetrack_core.pub.fastserver.gateway import FastPub

logger = logging.getLogger("racetrack.pub")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
#: Request headers the fast server frames itself (the body's length, and 100-continue).
_REFRAMED = frozenset({"content-length", "expect"})
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS", "TRACE"})


async def handle_job_call(
    gateway: FastPub, conn: CallerConnection, request: Request, path: str
) -> None:
    """Answer a call; ``path`` is the request path after ``/job/``, still percent-encoded."""
    scope = {"headers": request.headers, "client": conn.peer}
    call = read_call(scope, gateway.tracing_key, gateway.dropped)
    tracing = [(gateway.tracing_key, call.tracing_id.encode("latin-1"))]
    parts = path.split("/", 2)
    if len(parts) < 2 or not _NAME.fullmatch(parts[0]) or not _NAME.fullmatch(parts[1]):
        message = "Job was not found: a call's path is /pub/job/{name}/{version}/{path}"
        gateway.answer_json(conn, request, 404, {"error": message}, tracing)
        return
    name, version = parts[0], parts[1]
    tail = "/" + parts[2] if len(parts) == 3 else ""
    if call.wants_websocket:
        message = "WebSocket calls are not supported by Pub yet; call the job over HTTP"
        gateway.answer_json(conn, request, 501, {"error": message}, tracing)
        return
    try:
        verdict = await gateway.permissions.check(
            name, version, tail[1:], call.token, call.tracing_id
        )
    except LifecycleUnavailable as error:
        gateway.answer_json(
            conn, request, 503, {"error": f"Pub cannot check permissions: {error}"}, tracing
        )
        return
    if isinstance(verdict, Denial):
        job = (name, version) if verdict.job_known else ("-", "-")
        gateway.metrics.record_auth_failure(*job, verdict.status)
        gateway.answer_json(conn, request, verdict.status, {"error": verdict.message}, tracing)
        return
    if conn.closed or request.finished:
        return
    await JobCall(gateway, conn, request, call, tracing).forward(verdict, name, version, tail)


class JobCall:
    """A call on its way to a job and back; it receives the job's answer as it arrives."""

    __slots__ = (
        "_buffered",
        "_chunked_body",
        "_chunked_out",
        "_conn",
        "_gateway",
        "_grant",
        "_head",
        "_parts",
        "_request",
        "_started",
        "_tracing",
        "_upstream",
        "call",
    )

    def __init__(
        self,
        gateway: FastPub,
        conn: CallerConnection,
        request: Request,
        call: IncomingCall,
        tracing: list[tuple[bytes, bytes]],
    ) -> None:
        self._gateway = gateway
        self._conn = conn
        self._request = request
        self.call = call
        self._tracing = tracing
        self._grant: Grant | None = None
        self._upstream: JobConnection | None = None
        self._started = 0.0
        self._buffered = True
        self._chunked_body = False
        self._chunked_out = False
        self._head = b""
        self._parts: list[bytes] = []

    async def forward(self, grant: Grant, name: str, version: str, tail: str) -> None:
        """Send the call to the job at ``grant``'s address (once more, if it refused)."""
        gateway, request = self._gateway, self._request
        self._started = time.perf_counter()
        retried = False
        while True:
            host, port, netloc, tls = gateway.address(grant.base_url)
            try:
                upstream = await gateway.pool.acquire(host, port, tls)
            except ConnectTimeout as error:
                waited = f"{gateway.config.connect_timeout:g} s"
                self._fail_before(
                    grant,
                    502,
                    "connection_refused",
                    f"is not reachable (no connection within {waited})",
                    error,
                )
                return
            except OSError as error:
                if not retried:
                    retried = True
                    grant = await self._ask_again(grant, name, version, tail[1:])
                    continue
                what = "is not reachable (connection refused); it may be down"
                self._fail_before(grant, 502, "connection_refused", what, error)
                return
            break
        if self._conn.closed or request.finished:
            gateway.pool.release(upstream, keep=True)
            return
        self._grant = grant
        self._upstream = upstream
        request.started = True
        request.on_gone = self._caller_gone
        request.on_writable = self._caller_writable
        head, streamed = self._request_head(grant, netloc, tail)
        if streamed:
            upstream.send(self, head, request.method == "HEAD", request_sent=False)
            self._conn.attach(request, self)
        else:
            upstream.send(self, head, request.method == "HEAD", request_sent=True)

    def _request_head(self, grant: Grant, netloc: str, tail: str) -> tuple[bytes, bool]:
        """The request as the job gets it (with its body when whole), and whether it streams."""
        request, call, gateway = self._request, self.call, self._gateway
        target = f"/pub/job/{grant.job_name}/{grant.job_version}{tail}"
        if request.query:
            target += "?" + request.query.decode("latin-1")
        lines = [f"{request.method} {target} HTTP/1.1", f"host: {netloc}"]
        lines.extend(f"{k}: {v}" for k, v in call.forwarded if k not in _REFRAMED)
        lines.append(f"x-forwarded-for: {call.forwarded_for}")
        if call.forwarded_host:
            lines.append(f"x-forwarded-host: {call.forwarded_host}")
        lines.append("x-forwarded-proto: http")
        lines.append(f"{gateway.tracing_header}: {call.tracing_id}")
        lines.append(f"x-caller-name: {grant.caller}")
        body = b""
        streamed = not request.complete
        if streamed and request.content_length is None:
            self._chunked_body = True
            lines.append("transfer-encoding: chunked")
        elif streamed:
            lines.append(f"content-length: {request.content_length}")
        else:
            body = b"".join(request.body)
            request.body = []
            if body or request.method not in _BODYLESS_METHODS:
                lines.append(f"content-length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body, streamed

    async def _ask_again(self, grant: Grant, name: str, version: str, job_path: str) -> Grant:
        """Where the job is now, after its address refused a connection."""
        permissions, call = self._gateway.permissions, self.call
        permissions.forget(name, version, job_path, call.token)
        try:
            verdict = await permissions.check(name, version, job_path, call.token, call.tracing_id)
        except LifecycleUnavailable:
            return grant
        return verdict if isinstance(verdict, Grant) else grant

    def _fail_before(
        self, grant: Grant, status: int, kind: str, what: str, error: BaseException | None
    ) -> None:
        """Answer with Pub's error for a job that did not answer (nothing of it was sent)."""
        gateway = self._gateway
        gateway.metrics.record_upstream_error(grant.job_name, grant.job_version, kind)
        logger.warning(
            "job %s %s at %s %s: %r", grant.job_name, grant.job_version, grant.base_url, what, error
        )
        message = f"Reverse proxy error: job {grant.job_name} {grant.job_version} {what}"
        payload = {"error": message, "job_name": grant.job_name, "job_version": grant.job_version}
        self._request.started = False
        gateway.answer_json(self._conn, self._request, status, payload, self._tracing)

    # --- BodySink: the request body, towards the job ---------------------------------------

    def body(self, data: bytes) -> None:
        upstream = self._upstream
        if upstream is not None and data:
            upstream.write(wire.chunk(data) if self._chunked_body else data)

    def end(self) -> None:
        upstream = self._upstream
        if upstream is None:
            return
        if self._chunked_body:
            upstream.write(wire.LAST_CHUNK)
        upstream.request_sent = True

    # --- AnswerSink: the job's answer, towards the caller ----------------------------------

    def on_head(
        self, status: int, headers: list[tuple[bytes, bytes]], length: int | None, chunked: bool
    ) -> None:
        grant, request = self._grant, self._request
        assert grant is not None
        elapsed = time.perf_counter() - self._started
        self._gateway.metrics.record_call(grant.job_name, grant.job_version, status, elapsed)
        out = response_headers(tuple(headers), grant.base_url)
        out.extend(self._tracing)
        bodyless = request.method == "HEAD" or status in (204, 304)
        if bodyless or (length is not None and length <= self._gateway.config.buffer_limit):
            self._head = bytes(wire.head(status, out, request.keep_alive))
            return
        self._buffered = False
        keep_alive = request.keep_alive
        if length is None:
            if request.http11:
                out.append((b"transfer-encoding", b"chunked"))
                self._chunked_out = True
            else:
                keep_alive = request.keep_alive = False  # the end of the connection delimits it
        self._conn.write(bytes(wire.head(status, out, keep_alive)))

    def on_body(self, data: bytes) -> None:
        if self._buffered:
            self._parts.append(data)
        else:
            self._conn.write(wire.chunk(data) if self._chunked_out else data)

    def on_complete(self) -> None:
        conn, request = self._conn, self._request
        if self._buffered:
            conn.answer(request, self._head + b"".join(self._parts) if self._parts else self._head)
            return
        if self._chunked_out:
            conn.write(wire.LAST_CHUNK)
        conn.finish(request)

    def on_failure(self, kind: str, error: BaseException | None) -> None:
        grant = self._grant
        assert grant is not None
        if self._buffered:
            if kind == "timeout":
                timeout = self._gateway.config.upstream_timeout
                self._fail_before(grant, 504, kind, f"did not answer within {timeout:g} s", error)
            else:
                what = "broke the connection before answering; it may have died"
                self._fail_before(grant, 502, kind, what, error)
            return
        # The answer has begun: the only honest report left is an aborted connection.
        logger.warning(
            "job %s %s broke off its answer: %r", grant.job_name, grant.job_version, error
        )
        self._conn.abort()

    def on_upstream_writable(self, writable: bool) -> None:
        self._conn.set_reading(writable)

    def _caller_writable(self, writable: bool) -> None:
        if self._upstream is not None:
            self._upstream.set_reading(writable)

    def _caller_gone(self) -> None:
        upstream, self._upstream = self._upstream, None
        if upstream is not None and upstream.sink is self:
            upstream.abandon()
