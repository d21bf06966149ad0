"""A job that runs as several instances (Lifecycle's ``replica_internal_names``): Pub sends
its calls to the *ready* instances in turn, with one permission check for them all, on both of
its servers. An instance that refuses connections or whose ``/ready`` fails leaves the rotation
without a call being lost, and comes back once its ``/ready`` answers 200 again."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from racetrack_core.pub import PubConfig, create_app
from racetrack_core.pub.asgi.serving import PubHttpProtocol
from tests.pub.servers import LifecycleStandIn, Server, admin
from tests.pub.test_front import FrontServer

#: Probing this often keeps the tests short; the defaults are 1 s and 2 s.
QUICK_PROBES = {"instance_probe_interval": 0.1, "instance_probe_timeout": 0.5}


class Instance:
    """A job instance that answers with its own name; its ``/ready`` can be made to fail,
    and it can be stopped and started again on the same port."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ready = True
        self.server: Server | None = Server(self.app())
        self.port = self.server.port
        self.url = self.server.url

    def app(self) -> Starlette:
        async def answer(request: Request) -> JSONResponse:
            return JSONResponse({"instance": self.name})

        async def ready(request: Request) -> JSONResponse:
            return JSONResponse({"ready": self.ready}, status_code=200 if self.ready else 503)

        return Starlette(
            routes=[Route("/ready", ready), Route("/pub/job/{name}/{version}/{path:path}", answer)]
        )

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def start(self) -> None:
        self.server = Server(self.app(), port=self.port)


@pytest.fixture
def instances() -> Iterator[list[Instance]]:
    both = [Instance("first"), Instance("second")]
    yield both
    for instance in both:
        instance.stop()


@pytest.fixture(params=["asgi", "front"])
def start_pub(
    request: pytest.FixtureRequest, lifecycle: LifecycleStandIn
) -> Iterator[Callable[..., str]]:
    """``start_pub(**config) -> base URL`` of Pub's ASGI app on uvicorn, or its front server."""
    stops: list[Callable[[], None]] = []

    def start(**overrides: Any) -> str:
        assert lifecycle.server is not None
        config = PubConfig(lifecycle_url=lifecycle.server.url, **overrides)
        if request.param == "front":
            front = FrontServer(config)
            stops.append(front.stop)
            return front.url
        protocol = functools.partial(PubHttpProtocol, pub_config=config)
        server = Server(create_app(config), lifespan="on", proxy_headers=False, http=protocol)
        stops.append(server.stop)
        return server.url

    yield start
    for stop in stops:
        stop()


@pytest.fixture
def twins(lifecycle: LifecycleStandIn, instances: list[Instance]) -> str:
    """The job ``twins`` 1.0.0, served by both instances; returns its path under Pub."""
    first, second = instances
    lifecycle.jobs["twins"] = {"1.0.0": first.url}
    lifecycle.instances["twins"] = [first.url, second.url + "/"]
    return "/pub/job/twins/1.0.0/run"


def answered_by(client: httpx.Client, url: str, calls: int) -> list[str]:
    """Who answered each of ``calls`` calls (every one must succeed)."""
    names = []
    for _ in range(calls):
        answer = client.get(url, headers=admin())
        assert answer.status_code == 200, answer.text
        names.append(answer.json()["instance"])
    return names


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_calls_to_a_replicated_job_take_its_instances_in_turn(
    lifecycle: LifecycleStandIn, twins: str, start_pub: Callable[..., str], client: httpx.Client
) -> None:
    pub = start_pub()
    assert answered_by(client, pub + twins, 4) == ["first", "second", "first", "second"]
    assert lifecycle.calls == 1  # the cached grant holds both instances


def test_a_job_with_one_instance_is_called_at_its_address(
    lifecycle: LifecycleStandIn,
    instances: list[Instance],
    start_pub: Callable[..., str],
    client: httpx.Client,
) -> None:
    first, _ = instances
    lifecycle.jobs["single"] = {"1.0.0": first.url}
    lifecycle.instances["single"] = [first.url]
    pub = start_pub()
    assert answered_by(client, f"{pub}/pub/job/single/1.0.0/run", 2) == ["first", "first"]


def test_an_instance_that_refuses_connections_leaves_the_rotation_until_ready_again(
    lifecycle: LifecycleStandIn,
    instances: list[Instance],
    twins: str,
    start_pub: Callable[..., str],
    client: httpx.Client,
) -> None:
    pub = start_pub(**QUICK_PROBES)
    _, second = instances
    assert sorted(answered_by(client, pub + twins, 2)) == ["first", "second"]

    second.stop()
    # Not one call lost: the refused connection sends the call to the other instance.
    assert answered_by(client, pub + twins, 6) == ["first"] * 6
    assert lifecycle.calls == 1  # the failover needs no new permission check

    second.start()
    wait_for(lambda: "second" in answered_by(client, pub + twins, 2), "second back in turn")
    assert sorted(answered_by(client, pub + twins, 4)) == ["first"] * 2 + ["second"] * 2


def test_an_instance_whose_ready_fails_leaves_the_rotation_until_it_passes_again(
    instances: list[Instance], twins: str, start_pub: Callable[..., str], client: httpx.Client
) -> None:
    pub = start_pub(**QUICK_PROBES)
    _, second = instances
    assert sorted(answered_by(client, pub + twins, 2)) == ["first", "second"]

    second.ready = False
    wait_for(lambda: answered_by(client, pub + twins, 4) == ["first"] * 4, "second left out")
    assert answered_by(client, pub + twins, 6) == ["first"] * 6

    second.ready = True
    wait_for(lambda: "second" in answered_by(client, pub + twins, 2), "second back in turn")


def test_with_no_instance_ready_calls_still_go_round_all_of_them(
    instances: list[Instance], twins: str, start_pub: Callable[..., str], client: httpx.Client
) -> None:
    pub = start_pub(**QUICK_PROBES)
    for instance in instances:
        instance.ready = False
    answered_by(client, pub + twins, 2)  # the job is now watched
    time.sleep(0.5)  # several probes: both instances are out of the rotation
    assert sorted(answered_by(client, pub + twins, 4)) == ["first"] * 2 + ["second"] * 2
