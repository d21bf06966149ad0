"""One call to a job: authorise it, send it on one pooled connection, relay the answer.

The logic is :mod:`racetrack_core.pub.asgi.proxy`'s (the same checks, errors and retry, from
:mod:`racetrack_core.pub.jobcalls`), over the front server's own I/O
(:class:`~racetrack_core.pub.front.relay.Relay`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Protocol

from racetrack_core.pub import failures
from racetrack_core.pub.config import PubConfig
from racetrack_core.pub.front.connection import CallerConnection
from racetrack_core.pub.front.pool import ConnectTimeout, JobPool
from racetrack_core.pub.front.relay import REFRAMED, Relay
from racetrack_core.pub.front.request import Request
from racetrack_core.pub.headers import (
    CallReader,
    IncomingCall,
    job_answer_headers,
    job_request_headers,
    legacy_route_headers,
    read_call,
)
from racetrack_core.pub.jobcalls import (
    NOT_ACCEPTED,
    REFUSED,
    JobPath,
    Refusal,
    ask_again,
    authorise,
    fail_over,
    parse_job_path,
)
from racetrack_core.pub.metrics import Metrics
from racetrack_core.pub.permissions import Grant, Permissions

logger = logging.getLogger("racetrack.pub")


class CallGateway(Protocol):
    """What a job call needs from the server (a FastPub, which imports this module): its
    configuration, permission checks, job connections, metrics and tracing header, and a way
    to answer with Pub's own JSON."""

    @property
    def config(self) -> PubConfig: ...

    @property
    def permissions(self) -> Permissions: ...

    @property
    def pool(self) -> JobPool: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def calls(self) -> CallReader: ...

    def answer_json(
        self,
        conn: CallerConnection,
        request: Request,
        status: int,
        payload: object,
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None: ...


async def handle_job_call(
    gateway: CallGateway, conn: CallerConnection, request: Request, path: str, legacy: bool = False
) -> None:
    """Answer a call; ``path`` is the request path after ``/job/`` (or, with ``legacy``, after
    the deprecated ``/fatman/``), still percent-encoded."""
    calls = gateway.calls
    call = read_call(request.headers, conn.peer, calls.key, calls.dropped)
    tracing = calls.tracing(call.tracing_id)
    if legacy:
        tracing += legacy_route_headers(path)
    target = parse_job_path(path)
    if target is None:
        gateway.answer_json(conn, request, 404, failures.error(failures.NOT_A_JOB_PATH), tracing)
        return
    verdict = await authorise(
        gateway.permissions, gateway.metrics, target, call.token, call.tracing_id
    )
    if isinstance(verdict, Refusal):
        refusal = failures.error(verdict.message)
        gateway.answer_json(conn, request, verdict.status, refusal, tracing)
        return
    if conn.closed or request.finished:
        return
    extra = tracing + job_answer_headers(target.tail)
    await JobCall(gateway, conn, request, call, extra).forward(verdict, target)


class JobCall(Relay[CallGateway]):
    """A call on its way to a job and back; it receives the job's answer as it arrives."""

    __slots__ = ("_grant", "_started", "call")

    def __init__(
        self,
        gateway: CallGateway,
        conn: CallerConnection,
        request: Request,
        call: IncomingCall,
        tracing: list[tuple[bytes, bytes]],
    ) -> None:
        super().__init__(gateway, conn, request, tracing)
        self.call = call
        self._grant: Grant | None = None
        self._started = 0.0

    async def forward(self, grant: Grant, target: JobPath) -> None:
        """Send the call to the job at ``grant``'s address; when it does not take the
        connection, to the next ready instance of a replicated job, else once more after asking
        Lifecycle where the job is."""
        gateway, request = self._gateway, self._request
        self._started = time.perf_counter()
        self._grant = grant
        retried = False
        tried: set[str] = set()
        while True:
            host, port, netloc, tls = gateway.pool.address(grant.base_url)
            try:
                upstream = await gateway.pool.acquire(host, port, tls)
            except ConnectTimeout as error:
                other = fail_over(gateway.permissions, grant, tried, NOT_ACCEPTED)
                if other is not None:
                    grant = self._grant = other
                    continue
                self._fail_before(
                    grant, failures.unreachable(gateway.config.connect_timeout), error
                )
                return
            except OSError as error:
                other = fail_over(gateway.permissions, grant, tried, REFUSED)
                if other is not None:
                    grant = self._grant = other
                    continue
                if not retried:
                    retried = True
                    call = self.call
                    grant = await ask_again(
                        gateway.permissions, target, call.token, call.tracing_id, grant
                    )
                    self._grant = grant
                    continue
                self._fail_before(grant, failures.refused(), error)
                return
            break
        if self._conn.closed or request.finished:
            gateway.pool.release(upstream, keep=True)
            return
        head, streamed = self.frame(self._request_lines(grant, netloc, target.tail))
        self.send(upstream, grant.base_url, head, streamed)

    def _request_lines(self, grant: Grant, netloc: str, tail: str) -> list[str]:
        """The request line and headers as the job gets them (framing still to come)."""
        request, gateway = self._request, self._gateway
        target = f"/pub/job/{grant.job_name}/{grant.job_version}{tail}"
        if request.query:
            target += "?" + request.query.decode("latin-1")
        lines = [f"{request.method} {target} HTTP/1.1", f"host: {netloc}"]
        # The front has no TLS towards callers: they always came over http.
        headers = job_request_headers(self.call, grant.caller, "http", gateway.calls.header)
        lines.extend(f"{k}: {v}" for k, v in headers if k not in REFRAMED)
        return lines

    def _fail_before(
        self, grant: Grant, failure: failures.Failure, error: BaseException | None
    ) -> None:
        """Answer with Pub's error for a job that did not answer (nothing of it was sent)."""
        gateway = self._gateway
        name, version = grant.job_name, grant.job_version
        gateway.metrics.record_upstream_error(name, version, failure.kind)
        logger.warning("job %s %s at %s %s: %r", name, version, grant.base_url, failure.what, error)
        payload = failures.job_error(name, version, failure.what)
        self._request.started = False
        gateway.answer_json(self._conn, self._request, failure.status, payload, self._extra)

    # --- Relay ------------------------------------------------------------------------------

    def answer_begins(self, status: int) -> None:
        grant = self._grant
        assert grant is not None
        elapsed = time.perf_counter() - self._started
        self._gateway.metrics.record_call(grant.job_name, grant.job_version, status, elapsed)

    def failed_before(self, kind: str, error: BaseException | None) -> None:
        grant = self._grant
        assert grant is not None
        if kind == "timeout":
            self._fail_before(grant, failures.silent(self._gateway.config.upstream_timeout), error)
        else:
            self._fail_before(grant, failures.broken(), error)

    def describe(self) -> str:
        grant = self._grant
        return f"job {grant.job_name} {grant.job_version}" if grant else "a job"
