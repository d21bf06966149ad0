"""Run Pub as ``racetrack serve pub`` does, until SIGINT or SIGTERM (on uvloop when installed).

:class:`FastPub` listens on the public port; Pub's ASGI app listens behind it on 127.0.0.1 (a
port the kernel picks), in the same event loop, for the routes the fast server forwards.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import signal
import socket

from racetrack_core.pub.app import create_app
from racetrack_core.pub.config import PubConfig
from racetrack_core.pub.fastserver.backend import Backend, backend_server, bind_backend_socket
from racetrack_core.pub.fastserver.gateway import FastPub

logger = logging.getLogger("racetrack.pub")


class PubServer:
    """:class:`FastPub` with Pub's ASGI app behind it: ``await start(...)``, ``await stop()``.

    The app's socket (127.0.0.1, a port the kernel picks) is bound when this is made.
    """

    def __init__(self, config: PubConfig) -> None:
        self.app = create_app(config)
        self._backend_socket = bind_backend_socket()
        self.backend = Backend("127.0.0.1", self._backend_socket.getsockname()[1])
        self._server = backend_server(self.app, self.backend)
        self.pub = FastPub(config, metrics=self.app.metrics, backend=self.backend)
        self._serving: asyncio.Task[None] | None = None

    async def start(
        self, host: str = "127.0.0.1", port: int = 7105, sock: socket.socket | None = None
    ) -> None:
        """Start the app, then the fast server on ``host:port`` (or on a bound ``sock``)."""
        self._serving = asyncio.create_task(self._server.serve(sockets=[self._backend_socket]))
        while not self._server.started:
            if self._serving.done():
                await self._serving
                raise RuntimeError("Pub's ASGI app did not start; see the log above")
            await asyncio.sleep(0.02)
        await self.pub.start()
        await self.pub.listen(host, port, sock)

    async def stop(self) -> None:
        """Stop the fast server (calls under way may finish), then the app."""
        await self.pub.stop()
        if self._serving is not None:
            self._server.should_exit = True
            await self._serving
        self._backend_socket.close()


async def _serve(config: PubConfig, host: str, port: int) -> None:
    server = PubServer(config)
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
    """Serve Pub on the fast server, configured from ``PUB_*`` variables unless ``config``."""
    logging.basicConfig(level=logging.WARNING)
    config = PubConfig.from_env() if config is None else config
    if importlib.util.find_spec("uvloop"):
        import uvloop

        uvloop.run(_serve(config, host, port))
    else:
        asyncio.run(_serve(config, host, port))
