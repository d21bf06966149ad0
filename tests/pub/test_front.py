"""The front server passes Pub's own behavioural tests: those of ``test_proxy`` and ``test_app``.

The ``start_pub`` fixture below replaces conftest's, so that every imported test drives
:class:`PubFront` instead of the ASGI app, against the same job and Lifecycle stand-in. Alone,
without the ASGI app behind it, the front server takes no WebSocket handshake: that one test is
replaced at the end.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from racetrack_core.pub import PubConfig
from racetrack_core.pub.front import PubFront
from tests.pub import test_app, test_proxy
from tests.pub.servers import LifecycleStandIn, admin

pytestmark = pytest.mark.slow

for _module in (test_proxy, test_app):
    for _name, _test in vars(_module).items():
        if _name.startswith("test_") and callable(_test):
            globals()[_name] = _test


class LoopServer:
    """A server run from an event loop in a thread, on 127.0.0.1 and a free port.

    Subclasses say how their server starts on ``self._socket`` and how it stops.
    """

    timeout = 10.0

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._call(self._start())

    async def _start(self) -> None:
        raise NotImplementedError

    async def _stop(self) -> None:
        raise NotImplementedError

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=self.timeout)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._call(self._stop())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
        self.loop.close()
        self._socket.close()


class FrontServer(LoopServer):
    """A :class:`PubFront` alone, served from an event loop in a thread."""

    def __init__(self, config: PubConfig, **options: Any) -> None:
        self.pub = PubFront(config, **options)
        super().__init__()

    async def _start(self) -> None:
        self._socket.listen(128)
        await self.pub.start()
        await self.pub.listen(sock=self._socket)

    async def _stop(self) -> None:
        await self.pub.stop()


@pytest.fixture
def start_pub(lifecycle: LifecycleStandIn) -> Iterator[Callable[..., str]]:
    """``start_pub(**config) -> base URL`` of a front Pub in front of the stand-in Lifecycle."""
    servers: list[FrontServer] = []

    def start(**overrides: Any) -> str:
        assert lifecycle.server is not None
        server = FrontServer(PubConfig(lifecycle_url=lifecycle.server.url, **overrides))
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


def test_an_upgrade_without_a_valid_handshake_is_refused_not_proxied(
    start_pub: Callable[..., str], lifecycle: LifecycleStandIn
) -> None:
    """Replaces ``test_proxy``'s: with no ASGI app behind it, no handshake can be taken."""
    pub = start_pub()
    response = httpx.get(
        f"{pub}/pub/job/adder/latest/ws",
        headers=admin(Connection="Upgrade", Upgrade="websocket"),
        timeout=10,
    )

    assert response.status_code == 501
    assert "racetrack serve pub" in response.json()["error"]
    assert response.headers["connection"] == "close"
    assert lifecycle.calls == 0
