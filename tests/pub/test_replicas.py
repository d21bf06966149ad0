"""A job that runs as several instances (Lifecycle's ``replica_internal_names``): Pub sends
its calls to the instances in turn, with one permission check for them all."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.pub.servers import LifecycleStandIn, Server, admin


def instance_app(name: str) -> Starlette:
    """A job instance that answers with its own name."""

    async def answer(request: Request) -> JSONResponse:
        return JSONResponse({"instance": name})

    return Starlette(routes=[Route("/pub/job/{name}/{version}/{path:path}", answer)])


@pytest.fixture
def instances() -> Iterator[list[Server]]:
    servers = [Server(instance_app("first")), Server(instance_app("second"))]
    yield servers
    for server in servers:
        server.stop()


def test_calls_to_a_replicated_job_take_its_instances_in_turn(
    lifecycle: LifecycleStandIn, instances: list[Server], pub: str, client: httpx.Client
) -> None:
    first, second = instances
    lifecycle.jobs["twins"] = {"1.0.0": first.url}
    lifecycle.instances["twins"] = [first.url, second.url + "/"]

    answers = [client.get(f"{pub}/pub/job/twins/1.0.0/run", headers=admin()) for _ in range(4)]

    assert [answer.status_code for answer in answers] == [200] * 4
    assert [answer.json()["instance"] for answer in answers] == [
        "first",
        "second",
        "first",
        "second",
    ]
    assert lifecycle.calls == 1  # the cached grant holds both instances


def test_a_job_with_one_instance_is_called_at_its_address(
    lifecycle: LifecycleStandIn, instances: list[Server], pub: str, client: httpx.Client
) -> None:
    first, _ = instances
    lifecycle.jobs["single"] = {"1.0.0": first.url}
    lifecycle.instances["single"] = [first.url]

    answers = [client.get(f"{pub}/pub/job/single/1.0.0/run", headers=admin()) for _ in range(2)]

    assert [answer.json()["instance"] for answer in answers] == ["first", "first"]
