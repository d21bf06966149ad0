"""The ASGI app behind the front server, which answers every route the front server does not serve.

``racetrack up`` runs Pub's ASGI app (:func:`racetrack_core.pub.create_app`) on a socket of its
own on 127.0.0.1, in the front server's event loop. The front server answers job calls and probes
itself and forwards everything else (the asynchronous-call routes, unknown paths) to that app,
through a pool of keep-alive connections of its own (:class:`BackendCall`).

The app must still see the caller's address (it extends ``X-Forwarded-For`` for asynchronous
calls), not the front server's. The front server says it in one header,
``x-racetrack-pub-front: <secret> <address> <port>``, and :func:`behind_front` wraps the app to
believe the header only with the secret made for this process; a caller's own copy of the
header never reaches the app.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import uvicorn

from racetrack_core.pub import failures
from racetrack_core.pub.asgi.responses import Receive, Scope, Send
from racetrack_core.pub.asgi.serving import PubHttpProtocol
from racetrack_core.pub.config import PubConfig
from racetrack_core.pub.front.pool import ConnectTimeout, JobPool
from racetrack_core.pub.front.relay import REFRAMED, Relay
from racetrack_core.pub.front.request import Request
from racetrack_core.pub.headers import HOP_BY_HOP

if TYPE_CHECKING:
    from racetrack_core.pub.asgi.app import PubApp
    from racetrack_core.pub.front.connection import CallerConnection

logger = logging.getLogger("racetrack.pub")

FRONT_HEADER = b"x-racetrack-pub-front"
#: The ASGI app's server keeps an idle connection this long; the front server's pool closes its
#: idle ones sooner (``BACKEND_IDLE``), so that it never sends on a connection being closed.
BACKEND_KEEP_ALIVE = 60
BACKEND_IDLE = 30.0
_NOT_FORWARDED = HOP_BY_HOP | {FRONT_HEADER} | {name.encode() for name in REFRAMED}
#: A WebSocket handshake keeps ``Connection: Upgrade`` and ``Upgrade``, and has no body.
HANDSHAKE_NOT_FORWARDED = _NOT_FORWARDED - {b"connection", b"upgrade"}


@dataclass(frozen=True)
class Backend:
    """Where the ASGI app listens, and the secret that vouches for the front server's header."""

    host: str
    port: int
    secret: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


def bind_backend_socket() -> socket.socket:
    """A socket on 127.0.0.1 and a port the kernel picks, for the ASGI app."""
    sock = socket.socket(socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def behind_front(app: PubApp, backend: Backend) -> Any:
    """``app`` taking the caller's address from the front server's header (with the secret)."""
    secret = backend.secret.encode()

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = _with_caller(scope, secret)
        await app(scope, receive, send)

    return asgi


def _with_caller(scope: Scope, secret: bytes) -> Scope:
    headers = scope["headers"]
    if not any(name == FRONT_HEADER for name, _ in headers):
        return scope
    scope = dict(scope)
    scope["headers"] = [(name, value) for name, value in headers if name != FRONT_HEADER]
    for name, value in headers:
        if name == FRONT_HEADER:
            given, _, address = value.partition(b" ")
            host, _, port = address.rpartition(b" ")
            if hmac.compare_digest(given, secret) and host and port.isdigit():
                scope["client"] = (host.decode("latin-1"), int(port))
    return scope


def backend_server(app: PubApp, backend: Backend) -> uvicorn.Server:
    """The uvicorn server of the ASGI app behind the front server (serve it on the bound socket).

    The front server writes ``Date`` itself and sends no ``Server``; the app's own are not made.
    Signals are left to whoever runs the event loop.
    """
    server = uvicorn.Server(
        uvicorn.Config(
            behind_front(app, backend),
            host=backend.host,
            port=backend.port,
            http=PubHttpProtocol,
            lifespan="on",
            proxy_headers=False,
            server_header=False,
            date_header=False,
            timeout_keep_alive=BACKEND_KEEP_ALIVE,
            timeout_graceful_shutdown=5,
            log_level="warning",
            access_log=False,
        )
    )
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    return server


def request_head(
    request: Request, conn: CallerConnection, backend: Backend, not_forwarded: frozenset[bytes]
) -> list[str]:
    """The request line and headers as the app gets them, with the caller's address.

    The caller's headers go on but ``not_forwarded`` and those its ``Connection`` header lists
    (other than ``Upgrade``, which a WebSocket handshake needs); the framing is still to come.
    """
    target = request.path + ("?" + request.query.decode("latin-1") if request.query else "")
    lines = [f"{request.method} {target} HTTP/1.1"]
    listed = _listed_in_connection(request.headers) - {b"upgrade"}
    lines.extend(
        f"{name.decode('latin-1')}: {value.decode('latin-1')}"
        for name, value in request.headers
        if name not in not_forwarded and name not in listed
    )
    peer = conn.peer or ("", 0)
    lines.append(f"{FRONT_HEADER.decode()}: {backend.secret} {peer[0]} {peer[1]}")
    return lines


class BackendGateway(Protocol):
    """What a call forwarded to the ASGI app needs from the server (a FastPub): its
    configuration, the pool of connections to the app, and a way to answer with Pub's own
    JSON."""

    @property
    def config(self) -> PubConfig: ...

    @property
    def backend_pool(self) -> JobPool: ...

    def answer_json(
        self,
        conn: CallerConnection,
        request: Request,
        status: int,
        payload: object,
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None: ...


class BackendCall(Relay["BackendGateway"]):
    """A request forwarded, as it came, to the ASGI app; its answer relayed back as it comes."""

    __slots__ = ("_backend",)

    async def forward(self, backend: Backend) -> None:
        """Send the request to the app at ``backend`` and relay its answer."""
        gateway, conn, request = self._gateway, self._conn, self._request
        self._backend = backend
        try:
            upstream = await gateway.backend_pool.acquire(backend.host, backend.port)
        except (ConnectTimeout, OSError) as error:
            self._fail(503, failures.APP_UNREACHABLE, error)
            return
        if conn.closed or request.finished:
            gateway.backend_pool.release(upstream, keep=True)
            return
        lines = request_head(request, conn, backend, _NOT_FORWARDED)
        head, streamed = self.frame(lines)
        self.send(upstream, backend.base_url, head, streamed)

    def failed_before(self, kind: str, error: BaseException | None) -> None:
        if kind == "timeout":
            timeout = self._gateway.backend_pool.read_timeout
            self._fail(504, failures.no_answer(timeout), error)
        else:
            self._fail(502, failures.BROKEN, error)

    def describe(self) -> str:
        return "Pub's ASGI app"

    def _fail(self, status: int, what: str, error: BaseException | None) -> None:
        logger.warning("Pub's ASGI app at %s %s: %r", self._backend.base_url, what, error)
        self._request.started = False
        payload = failures.app_error(self._request.path, what)
        self._gateway.answer_json(self._conn, self._request, status, payload)


def _listed_in_connection(headers: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Header names that the ``Connection`` header makes hop-by-hop (RFC 9110, 7.6.1)."""
    listed: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            listed.update(option.strip().lower() for option in value.split(b","))
    return frozenset(listed)
