"""Fixtures for Pub's tests: the servers of ``servers.py``, and Pub in front of them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from racetrack_core.pub import PubConfig, create_app
from racetrack_core.pub.asgi.serving import PubHttpProtocol
from tests.pub.servers import LifecycleStandIn, Server, job_app, refused_url

# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def job() -> Iterator[Server]:
    server = Server(job_app())
    yield server
    server.stop()


@pytest.fixture
def lifecycle(job: Server) -> Iterator[LifecycleStandIn]:
    stand_in = LifecycleStandIn(
        jobs={
            "adder": {"1.0.0": job.url, "1.2.0": job.url, "2.0.0-beta": job.url},
            "ghost": {"1.0.0": refused_url()},
        }
    )
    stand_in.server = Server(stand_in.app())
    yield stand_in
    stand_in.server.stop()


@pytest.fixture
def start_pub(lifecycle: LifecycleStandIn) -> Iterator[Callable[..., str]]:
    """``start_pub(**config) -> base URL`` of a Pub in front of the stand-in Lifecycle."""
    servers: list[Server] = []

    def start(**overrides: Any) -> str:
        assert lifecycle.server is not None
        config = PubConfig(lifecycle_url=lifecycle.server.url, **overrides)
        # Served as in production: Pub's protocol (one write per small answer), and uvicorn
        # must not rewrite the client from X-Forwarded-For, which Pub extends itself.
        server = Server(
            create_app(config), lifespan="on", proxy_headers=False, http=PubHttpProtocol
        )
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def pub(start_pub: Callable[..., str]) -> str:
    return start_pub()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=15) as http:
        yield http
