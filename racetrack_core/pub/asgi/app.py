"""``create_app(config)``: Pub as a pure ASGI app, with no framework on the hot path.

Routes, each under ``/pub`` and at the root:

``ANY /job/{name}/{version}[/{path}]``  the authenticated proxy (:mod:`.proxy`)
``ANY /fatman/{name}/{version}[/{path}]``
                                        the same, the original's oldest spelling, deprecated
``WebSocket /job/{name}/{version}[/{path}]``
                                        the same, relayed (:mod:`.websockets`)
``ANY /async/new/job/...``, ``GET /async/task/{id}/poll|status``
                                        asynchronous calls (:mod:`.asynccalls`)
``GET /live``, ``/ready``, ``/health``   probes, JSON
``GET /metrics``                         Prometheus text

The lifespan opens the one pooled HTTP session and closes it; the app keeps it, with the
permission cache and the metrics, on itself, so that two apps in one process share nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from racetrack_core.pub import failures, probes
from racetrack_core.pub.asgi.asynccalls import AsyncCalls
from racetrack_core.pub.asgi.proxy import JobProxy
from racetrack_core.pub.asgi.responses import Receive, Scope, Send, send_bytes, send_json
from racetrack_core.pub.asgi.websockets import WebSocketProxy
from racetrack_core.pub.calltimes import CallTimeReporter
from racetrack_core.pub.config import PubConfig
from racetrack_core.pub.headers import LEGACY_PREFIX
from racetrack_core.pub.metrics import CONTENT_TYPE_LATEST, Metrics
from racetrack_core.pub.permissions import Permissions

logger = logging.getLogger("racetrack.pub")

#: Headers aiohttp would add on its own; Pub forwards the caller's, or none.
_NOT_ADDED = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


@dataclass
class _Running:
    session: aiohttp.ClientSession
    proxy: JobProxy
    websockets: WebSocketProxy
    async_calls: AsyncCalls
    permissions: Permissions
    call_times: CallTimeReporter


class PubApp:
    """The Pub gateway; create it with :func:`create_app`."""

    def __init__(self, config: PubConfig) -> None:
        self.config = config
        self.metrics = Metrics()
        self._running: _Running | None = None
        self._routes: dict[str, Callable[[Send], Awaitable[None]]] = {
            "/live": self._live,
            "/ready": self._ready,
            "/health": self._health,
            "/metrics": self._metrics_text,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path: str = scope.get("raw_path", b"").decode("latin-1") or scope["path"]
            if path.startswith("/pub/"):
                path = path[4:]
            if path.startswith("/job/"):
                if self._running is None:
                    await send_json(send, 503, failures.error(failures.NOT_STARTED))
                    return
                await self._running.proxy(scope, receive, send, path[5:])
                return
            if path.startswith(LEGACY_PREFIX):
                if self._running is None:
                    await send_json(send, 503, failures.error(failures.NOT_STARTED))
                    return
                await self._running.proxy(scope, receive, send, path[8:], legacy=True)
                return
            if path.startswith("/async/"):
                if self._running is None:
                    await send_json(send, 503, failures.error(failures.NOT_STARTED))
                    return
                await self._running.async_calls(scope, receive, send, path[7:])
                return
            route = self._routes.get(path.partition("?")[0])
            if route is None:
                await send_json(send, 404, failures.no_route(scope["path"]))
            elif scope["method"] not in ("GET", "HEAD"):
                await send_json(send, 405, failures.get_only(path))
            else:
                await route(send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("raw_path", b"").decode("latin-1") or scope["path"]
        if path.startswith("/pub/"):
            path = path[4:]
        if not path.startswith("/job/") or self._running is None:
            # Closing before the handshake makes the server answer 403.
            await send({"type": "websocket.close", "code": 1008})
            return
        await self._running.websockets(scope, receive, send, path[5:])

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as error:
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def start(self) -> None:
        """Open the pooled session (the lifespan calls this)."""
        config = self.config
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=config.max_connections,
                limit_per_host=0,
                keepalive_timeout=config.upstream_keepalive_timeout,
            ),
            # Cookies a job sets belong to its caller, never to Pub's shared session.
            cookie_jar=aiohttp.DummyCookieJar(),
            # Bodies pass through as they are, compressed or not.
            auto_decompress=False,
            skip_auto_headers=_NOT_ADDED,
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=config.connect_timeout, sock_read=config.upstream_timeout
            ),
            trust_env=False,
        )
        permissions = Permissions(config, session, self.metrics)
        async_calls = AsyncCalls(config, session, permissions, self.metrics)
        self._running = _Running(
            session,
            JobProxy(config, session, permissions, self.metrics),
            WebSocketProxy(config, session, permissions, self.metrics),
            async_calls,
            permissions,
            CallTimeReporter(config, session, self.metrics),
        )
        async_calls.start()
        self._running.call_times.start()
        logger.info("Pub started; Lifecycle at %s", config.lifecycle_url)

    async def stop(self) -> None:
        """Stop the asynchronous calls, report the last call times, then close the pooled
        session (the lifespan calls this)."""
        if self._running is not None:
            running, self._running = self._running, None
            await running.async_calls.stop()
            await running.permissions.close()
            await running.call_times.stop()
            await running.session.close()

    async def _live(self, send: Send) -> None:
        await send_json(send, *probes.live())

    async def _ready(self, send: Send) -> None:
        await send_json(send, *probes.ready(self._running is not None))

    async def _health(self, send: Send) -> None:
        ready = self._running is not None
        await send_json(send, *probes.health(ready, self.config.lifecycle_url))

    async def _metrics_text(self, send: Send) -> None:
        await send_bytes(send, 200, self.metrics.render(), CONTENT_TYPE_LATEST.encode())


def create_app(config: PubConfig | None = None) -> PubApp:
    """Pub as an ASGI app; ``config`` defaults to :meth:`PubConfig.from_env`.

    Serve it with lifespan on (uvicorn's default): the lifespan opens the HTTP session.
    """
    return PubApp(PubConfig.from_env() if config is None else config)
