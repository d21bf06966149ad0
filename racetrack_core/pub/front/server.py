"""``PubFront``: Pub's routes on the front server, and what a running server owns.

It owns the permission cache (:class:`~racetrack_core.pub.permissions.Permissions`, which asks
Lifecycle through an aiohttp session of its own: only on cache misses), the pool of
connections to jobs, the metrics (or shares the ASGI app's), and one sweeper that runs about
once a second to time out silent jobs and close idle connections, so that no call sets a timer
of its own. Given a :class:`~racetrack_core.pub.front.backend.Backend`, it forwards every
request it does not serve itself to Pub's ASGI app there, through a second pool, and hands it
every WebSocket handshake (:mod:`~racetrack_core.pub.front.tunnel`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections.abc import Callable, Coroutine, Iterable

import aiohttp

from racetrack_core.pub import failures, probes
from racetrack_core.pub.config import PubConfig
from racetrack_core.pub.front import wire
from racetrack_core.pub.front.backend import BACKEND_IDLE, Backend, BackendCall
from racetrack_core.pub.front.call import handle_job_call
from racetrack_core.pub.front.connection import CallerConnection
from racetrack_core.pub.front.pool import JobPool
from racetrack_core.pub.front.request import Request
from racetrack_core.pub.front.tunnel import open_tunnel
from racetrack_core.pub.headers import LEGACY_PREFIX, CallReader
from racetrack_core.pub.metrics import CONTENT_TYPE_LATEST, Metrics
from racetrack_core.pub.permissions import Permissions

logger = logging.getLogger("racetrack.pub")

#: A request body larger than this gets 413 (the ASGI Pub, on uvicorn, sets no limit).
MAX_BODY_SIZE = 1 << 30


class PubFront:
    """Pub on its own asyncio server: ``await start()``, ``await listen(...)``, ``await stop()``."""

    def __init__(
        self,
        config: PubConfig,
        *,
        metrics: Metrics | None = None,
        backend: Backend | None = None,
        keep_alive_timeout: float = 5.0,
        max_body_size: int = MAX_BODY_SIZE,
    ) -> None:
        self.config = config
        #: Pass the ASGI app's (``app.metrics``) so that ``/metrics`` counts both servers' work.
        self.metrics = Metrics() if metrics is None else metrics
        #: Where the ASGI app answers what the front server does not (none: those are 404s).
        self.backend = backend
        self.keep_alive_timeout = keep_alive_timeout
        self.max_body_size = max_body_size
        self.calls = CallReader.of(config.request_tracing_header)
        self.connections: set[CallerConnection] = set()
        #: Stopping: each connection closes after its current answer.
        self.draining = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._permissions: Permissions | None = None
        self._pool: JobPool | None = None
        self._backend_pool: JobPool | None = None
        self._servers: list[asyncio.Server] = []
        self._sweeper: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._routes: dict[str, Callable[[], bytes]] = {
            "/live": self._live,
            "/ready": self._ready,
            "/health": self._health,
            "/metrics": self._metrics_text,
        }

    # --- running --------------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "PubFront is not started"
        return self._loop

    @property
    def permissions(self) -> Permissions:
        assert self._permissions is not None, "PubFront is not started"
        return self._permissions

    @property
    def pool(self) -> JobPool:
        assert self._pool is not None, "PubFront is not started"
        return self._pool

    @property
    def backend_pool(self) -> JobPool:
        assert self._backend_pool is not None, "PubFront has no backend, or is not started"
        return self._backend_pool

    async def start(self) -> None:
        """Open the Lifecycle session and the job pool, and start the sweeper."""
        config = self.config
        self._loop = asyncio.get_running_loop()
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=64, keepalive_timeout=config.upstream_keepalive_timeout
            ),
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
        )
        self._permissions = Permissions(config, self._session, self.metrics)
        self._pool = JobPool(
            self._loop,
            connect_timeout=config.connect_timeout,
            read_timeout=config.upstream_timeout,
            idle_timeout=config.upstream_keepalive_timeout,
            max_connections=config.max_connections,
        )
        if self.backend is not None:
            # A poll may wait async_poll_timeout for its answer, then ask Lifecycle.
            wait = config.async_poll_timeout + config.lifecycle_timeout
            self._backend_pool = JobPool(
                self._loop,
                connect_timeout=config.connect_timeout,
                read_timeout=max(config.upstream_timeout, wait),
                idle_timeout=BACKEND_IDLE,
                max_connections=config.max_connections,
            )
        self._schedule_sweep()
        logger.info("Pub (front server) started; Lifecycle at %s", config.lifecycle_url)

    async def listen(
        self, host: str = "127.0.0.1", port: int = 7105, sock: socket.socket | None = None
    ) -> asyncio.Server:
        """Accept calls on ``host:port`` (or on a bound socket ``sock``)."""
        factory = functools.partial(CallerConnection, self)
        if sock is not None:
            server = await self.loop.create_server(factory, sock=sock, backlog=2048)
        else:
            server = await self.loop.create_server(
                factory, host, port, backlog=2048, reuse_address=True
            )
        self._servers.append(server)
        return server

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, let calls under way finish for up to ``grace`` seconds, close all."""
        if self._loop is None:
            return  # never started
        self.draining = True
        for server in self._servers:
            server.close()
        deadline = self.loop.time() + grace
        while self.loop.time() < deadline:
            for connection in list(self.connections):
                if connection.active is None:
                    connection.close()
            if not self.connections:
                break
            await asyncio.sleep(0.05)
        for connection in list(self.connections):
            connection.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for pool in (self._pool, self._backend_pool):
            if pool is not None:
                pool.close()
        if self._permissions is not None:
            await self._permissions.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _schedule_sweep(self) -> None:
        config = self.config
        tick = min(
            1.0,
            config.upstream_timeout / 4,
            config.request_head_timeout / 4,
            self.keep_alive_timeout / 4,
        )
        self._sweeper = self.loop.call_later(tick, self._sweep)

    def _sweep(self) -> None:
        try:
            self.pool.sweep()
            if self._backend_pool is not None:
                self._backend_pool.sweep()
            now = self.loop.time()
            head_timeout = self.config.request_head_timeout
            for connection in list(self.connections):
                if connection.head_overdue(now, head_timeout):
                    connection.time_out_head(head_timeout)
                elif connection.idle_for(now) > self.keep_alive_timeout:
                    connection.close()
        finally:
            self._schedule_sweep()

    # --- routing ----------------------------------------------------------------------------

    def dispatch(self, conn: CallerConnection, request: Request) -> None:
        """Answer ``request`` (at once, or from a task for a job call or the ASGI app)."""
        if request.websocket:
            self._run(self._tunnel(conn, request))
            return
        path = request.path
        if path.startswith("/pub/"):
            path = path[4:]
        if path.startswith("/job/"):
            self._run(self._job_call(conn, request, path[5:]))
            return
        if path.startswith(LEGACY_PREFIX):
            self._run(self._job_call(conn, request, path[8:], legacy=True))
            return
        route = self._routes.get(path)
        if route is None and self.backend is not None:
            self._run(self._forward(conn, request, self.backend))
        elif route is None:
            self.answer_json(conn, request, 404, failures.no_route(request.path))
        elif request.method not in ("GET", "HEAD"):
            self.answer_json(conn, request, 405, failures.get_only(path))
        else:
            conn.answer(request, self._with_framing(route(), request))

    def _run(self, call: Coroutine[None, None, None]) -> None:
        task = self.loop.create_task(call)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _forward(self, conn: CallerConnection, request: Request, backend: Backend) -> None:
        try:
            await BackendCall(self, conn, request, []).forward(backend)
        except Exception:
            self._failed(conn, request)

    async def _tunnel(self, conn: CallerConnection, request: Request) -> None:
        try:
            await open_tunnel(self, conn, request)
        except Exception:
            self._failed(conn, request)

    async def _job_call(
        self, conn: CallerConnection, request: Request, path: str, legacy: bool = False
    ) -> None:
        try:
            await handle_job_call(self, conn, request, path, legacy)
        except Exception:
            self._failed(conn, request)

    def _failed(self, conn: CallerConnection, request: Request) -> None:
        logger.exception("Pub failed on %s %s", request.method, request.path)
        if not request.started:
            self.answer_json(conn, request, 500, failures.error(failures.FAILED))
        else:
            conn.abort()

    def answer_json(
        self,
        conn: CallerConnection,
        request: Request,
        status: int,
        payload: object,
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        """Answer with Pub's own JSON (an error, or a probe)."""
        keep_alive = request.keep_alive and (request.complete or not request.expects_continue)
        data = wire.json_answer(status, payload, headers, keep_alive, request.method != "HEAD")
        conn.answer(request, data)

    # --- Pub's own routes -------------------------------------------------------------------

    def _with_framing(self, answer: bytes, request: Request) -> bytes:
        # The routes give finished answers; only HEAD and keep-alive differ per request.
        if request.keep_alive and request.method != "HEAD":
            return answer
        head, _, body = answer.partition(b"\r\n\r\n")
        if not request.keep_alive:
            head += b"\r\nconnection: close"
        return head + b"\r\n\r\n" + (b"" if request.method == "HEAD" else body)

    def _live(self) -> bytes:
        return wire.json_answer(*probes.live(), (), True)

    def _ready(self) -> bytes:
        return wire.json_answer(*probes.ready(self._pool is not None), (), True)

    def _health(self) -> bytes:
        status, payload = probes.health(self._pool is not None, self.config.lifecycle_url)
        return wire.json_answer(status, payload, (), True)

    def _metrics_text(self) -> bytes:
        body = self.metrics.render()
        return wire.whole_answer(200, body, CONTENT_TYPE_LATEST.encode(), (), True)
