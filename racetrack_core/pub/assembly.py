"""Pub assembled as ``racetrack up`` and ``racetrack serve pub`` run it: the front server on
Pub's port, the ASGI app behind it on 127.0.0.1 (a port the kernel picks), in one event loop.

:func:`assemble` is the one place that puts the two together; :class:`PubServer` runs them
(``await start(...)``, ``await stop()``), either whole or, inside a process that runs other
uvicorn servers in the same loop (``racetrack_core.server``), step by step: the app's uvicorn
server (:attr:`PubServer.backend_server`, served by :meth:`PubServer.serve_backend`), then the
front (:meth:`PubServer.open_front`). :func:`serve` runs one Pub until SIGINT or SIGTERM
(``python -m racetrack_core.pub``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import signal
import socket

import uvicorn

from racetrack_core.pub.asgi.app import PubApp, create_app
from racetrack_core.pub.config import PubConfig
from racetrack_core.pub.front.backend import Backend, backend_server, bind_backend_socket
from racetrack_core.pub.front.server import PubFront

logger = logging.getLogger("racetrack.pub")


class PubServer:
    """:class:`PubFront` with Pub's ASGI app behind it; make it with :func:`assemble`.

    The app's socket (127.0.0.1, a port the kernel picks) is bound when this is made, so that
    a process binding several ports binds them all before it starts anything.
    """

    def __init__(self, app: PubApp) -> None:
        self.app = app
        self.backend_socket = bind_backend_socket()
        self.backend = Backend("127.0.0.1", self.backend_socket.getsockname()[1])
        #: The ASGI app's uvicorn server; its ``started`` and ``should_exit`` are uvicorn's.
        self.backend_server: uvicorn.Server = backend_server(app, self.backend)
        #: The front shares the app's metrics, so that ``/metrics`` counts both servers' work.
        self.front = PubFront(app.config, metrics=app.metrics, backend=self.backend)
        self._serving: asyncio.Task[None] | None = None

    async def serve_backend(self) -> None:
        """Serve the ASGI app on its socket until :meth:`stop` (or ``should_exit``)."""
        await self.backend_server.serve(sockets=[self.backend_socket])

    async def open_front(
        self, host: str = "127.0.0.1", port: int = 7105, sock: socket.socket | None = None
    ) -> None:
        """Start the front and accept calls on ``host:port`` (or on a bound ``sock``); the app
        behind it must be serving already."""
        await self.front.start()
        await self.front.listen(host, port, sock)

    async def start(
        self, host: str = "127.0.0.1", port: int = 7105, sock: socket.socket | None = None
    ) -> None:
        """Start the app, then the front on ``host:port`` (or on a bound ``sock``)."""
        self._serving = asyncio.create_task(self.serve_backend())
        while not self.backend_server.started:
            if self._serving.done():
                await self._serving
                raise RuntimeError("Pub's ASGI app did not start; see the log above")
            await asyncio.sleep(0.02)
        await self.open_front(host, port, sock)

    async def stop_front(self) -> None:
        """Stop the front: no new calls; calls under way may finish (up to 5 s)."""
        await self.front.stop()

    async def stop(self) -> None:
        """Stop the front (calls under way may finish), then the app."""
        await self.stop_front()
        if self._serving is not None:
            self.backend_server.should_exit = True
            await self._serving
        self.close()

    def close(self) -> None:
        """Release the app's socket (once nothing serves on it)."""
        self.backend_socket.close()


def assemble(app: PubApp | PubConfig) -> PubServer:
    """Pub as ``racetrack up`` serves it: the front server and, behind it, ``app`` (or the ASGI
    app made from a :class:`PubConfig`)."""
    return PubServer(create_app(app) if isinstance(app, PubConfig) else app)


async def _serve(config: PubConfig, host: str, port: int) -> None:
    server = assemble(config)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await server.start(host, port)
        await stopping.wait()
    finally:
        await server.stop()


def serve(host: str = "127.0.0.1", port: int = 7105, config: PubConfig | None = None) -> None:
    """Serve Pub (front and app), configured from ``PUB_*`` variables unless ``config``."""
    logging.basicConfig(level=logging.WARNING)
    config = PubConfig.from_env() if config is None else config
    if importlib.util.find_spec("uvloop"):
        import uvloop

        uvloop.run(_serve(config, host, port))
    else:
        asyncio.run(_serve(config, host, port))
