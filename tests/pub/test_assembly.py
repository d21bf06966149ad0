"""Pub as ``racetrack up`` runs it: the front server in front, the ASGI app behind it.

Every test of ``test_proxy``, ``test_app``, ``test_async_calls``, ``test_calltimes`` and
``test_fatman_routes`` runs again here, against a :class:`PubServer` (the fixtures ``start_pub``
and ``services`` are replaced), so that no route is lost in front of the ASGI app; the tests
below cover what only the pair shows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from racetrack_core.pub import PubConfig
from racetrack_core.pub.assembly import assemble
from racetrack_core.pub.front import Backend
from racetrack_core.pub.front.backend import FRONT_HEADER
from tests.pub import test_app, test_async_calls, test_calltimes, test_fatman_routes, test_proxy
from tests.pub.servers import ADMIN_TOKEN, LifecycleStandIn, Server, admin, refused_url
from tests.pub.test_asgi_serving import free_port
from tests.pub.test_async_calls import INTERNAL_TOKEN, Lifecycle, StandIn, submit
from tests.pub.test_front import FrontServer, LoopServer

pytestmark = pytest.mark.slow

for _module in (test_proxy, test_app, test_async_calls, test_calltimes, test_fatman_routes):
    for _name, _test in vars(_module).items():
        if _name.startswith("test_") and callable(_test):
            globals()[_name] = _test
stand_in = test_async_calls.stand_in


class FrontedServer(LoopServer):
    """A :class:`PubServer` (the front server and the app behind it) from a loop in a thread."""

    timeout = 15.0

    def __init__(self, config: PubConfig) -> None:
        self._config = config
        super().__init__()

    async def _start(self) -> None:
        self.server = assemble(self._config)
        await self.server.start(sock=self._socket)

    async def _stop(self) -> None:
        await self.server.stop()


@pytest.fixture
def start_pub(lifecycle: LifecycleStandIn) -> Iterator[Callable[..., str]]:
    """``start_pub(**config) -> base URL`` of the front server and the app behind it."""
    servers: list[FrontedServer] = []

    def start(**overrides: Any) -> str:
        assert lifecycle.server is not None
        server = FrontedServer(PubConfig(lifecycle_url=lifecycle.server.url, **overrides))
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def services(tmp_path: Path, stand_in: StandIn) -> Iterator[Callable[..., tuple[Lifecycle, str]]]:
    """``services(**pub_config) -> (lifecycle, pub URL)``, as in ``test_async_calls``."""
    started: list[Any] = []

    def start(**overrides: Any) -> tuple[Lifecycle, str]:
        for old in reversed(started):
            old.stop()
        started.clear()
        lifecycle = Lifecycle(tmp_path / "home", stand_in)
        started.append(lifecycle)
        settings: dict[str, Any] = {
            "internal_token": INTERNAL_TOKEN,
            "async_retry_delay": 0.2,
            "async_heartbeat_interval": 0.3,
            "async_adopt_after": 1.0,
            "async_poll_timeout": 5.0,
            "auth_cache_ttl": 0.0,
            **overrides,
        }
        pub = FrontedServer(PubConfig(lifecycle_url=lifecycle.url, **settings))
        started.append(pub)
        return lifecycle, pub.url

    yield start
    for server in reversed(started):
        server.stop()


# --- what only the pair shows -------------------------------------------------------------


def test_the_app_behind_sees_the_caller_not_the_fast_server(
    services: Callable[..., tuple[Lifecycle, str]], client: httpx.Client
) -> None:
    _, pub = services()
    task_id = submit(
        client,
        pub,
        "adder/1.2.0/echo",
        headers=admin(**{"X-Forwarded-For": "203.0.113.9", FRONT_HEADER.decode(): "made up"}),
        content=b"{}",
    )
    answer = client.get(f"{pub}/pub/async/task/{task_id}/poll")
    assert answer.status_code == 200, answer.text
    headers = dict(answer.json()["headers"])
    # The caller's own chain, then its address: the front server's header was believed, and the
    # caller's copy of that header reached neither the app nor the job.
    assert headers["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert FRONT_HEADER.decode() not in headers


def test_metrics_count_both_servers_in_one_registry(
    services: Callable[..., tuple[Lifecycle, str]], client: httpx.Client
) -> None:
    _, pub = services()
    assert client.post(f"{pub}/pub/job/adder/1.2.0/echo", headers=admin()).status_code == 200
    task_id = submit(client, pub, "adder/1.0.0/echo", headers=admin(), content=b"{}")
    assert client.get(f"{pub}/pub/async/task/{task_id}/poll").status_code == 200
    text = client.get(f"{pub}/pub/metrics").text
    # The synchronous call (front server) and the asynchronous one (ASGI app), side by side.
    assert 'pub_job_proxy_requests_total{job_name="adder",job_version="1.2.0"} 1.0' in text
    assert 'pub_job_proxy_requests_total{job_name="adder",job_version="1.0.0"} 1.0' in text


def test_an_unknown_route_is_the_apps_404(start_pub: Callable[..., str]) -> None:
    pub = start_pub()
    answer = httpx.post(f"{pub}/pub/nothing/here?x=1", content=b"ignored")
    assert answer.status_code == 404
    assert answer.json() == {"error": "Pub has no route /pub/nothing/here"}
    assert "server" not in answer.headers
    assert len(answer.headers.get_list("date")) == 1


def test_the_app_gone_is_a_503_naming_no_address(lifecycle: LifecycleStandIn) -> None:
    assert lifecycle.server is not None
    gone = Backend("127.0.0.1", int(refused_url().rsplit(":", 1)[1]))
    server = FrontServer(PubConfig(lifecycle_url=lifecycle.server.url), backend=gone)
    try:
        answer = httpx.get(f"{server.url}/pub/async/task/some-id/poll", timeout=10)
        live = httpx.get(f"{server.url}/pub/live", timeout=10)
    finally:
        server.stop()
    assert answer.status_code == 503
    message = answer.json()["error"]
    assert message.startswith("Pub cannot answer /pub/async/task/some-id/poll: its ASGI app")
    assert "127.0.0.1" not in message
    assert live.status_code == 200  # probes are the front server's own


def test_a_long_poll_is_not_cut_by_a_short_upstream_timeout(
    services: Callable[..., tuple[Lifecycle, str]], client: httpx.Client, job: Server
) -> None:
    _, pub = services(upstream_timeout=0.5, async_poll_timeout=2.0)
    task_id = submit(client, pub, "adder/1.2.0/slow", headers=admin(), content=b"{}")
    answer = client.get(f"{pub}/pub/async/task/{task_id}/poll")
    # The job takes 3 s, more than upstream_timeout: the task fails, but the poll itself waited
    # its 2 s behind the front server instead of being cut after 0.5 s.
    assert answer.status_code in (202, 500), answer.text
    assert ADMIN_TOKEN not in answer.text


def test_python_m_racetrack_core_pub_serves_the_front_with_the_app_behind_it() -> None:
    port = free_port()
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PUB_LIFECYCLE_URL": "http://127.0.0.1:9", "PYTHONPATH": str(root)}
    command = [sys.executable, "-m", "racetrack_core.pub", "--port", str(port)]
    process = subprocess.Popen(command, env=env)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/pub/ready", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, "Pub exited"
                assert time.monotonic() < deadline, "Pub did not answer within 20 s"
                time.sleep(0.1)
        async_call = httpx.get(f"http://127.0.0.1:{port}/pub/async/task/some-id/status", timeout=5)
    finally:
        process.send_signal(signal.SIGTERM)
        stopped = process.wait(timeout=15)

    assert ready.json() == {"service": "pub", "ready": True}
    # Only the ASGI app behind the front answers the asynchronous-call routes.
    assert async_call.status_code == 503
    assert async_call.json()["error"].startswith("asynchronous calls are off")
    assert stopped == 0
