"""Every job shares Pub's origin: in Debian's Chromium, a job's HTML page cannot call another
job with the visitor's token cookie, while a job's Swagger page (``/docs``) still can call its
job, as "Try it out" does (issue 15).

Pub (the front server, and the ASGI app alone) runs in front of a Lifecycle stand-in and one job
server that answers for two jobs: ``attacker``, whose page fetches ``victim``'s answer with
credentials, and ``victim``. The browser holds the ``X-Racetrack-Auth`` cookie as a login sets
it (``HttpOnly``, ``SameSite=Lax``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from racetrack_core.pub import PubConfig, create_app
from racetrack_core.pub.asgi.serving import PubHttpProtocol
from tests.pub.servers import ADMIN_TOKEN, LifecycleStandIn, Server
from tests.pub.test_front import FrontServer

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

VICTIM = "/pub/job/victim/1.0.0/api/v1/secret"
FETCH = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>waiting</title></head><body>
<script>
fetch("%s", {credentials: "include"})
  .then(answer => answer.text())
  .then(text => { document.title = "got " + text; })
  .catch(error => { document.title = "failed " + error; });
</script></body></html>
"""


class Jobs:
    """One job server answering for ``attacker`` and ``victim``; counts the victim's calls."""

    def __init__(self) -> None:
        self.victim_calls = 0

    async def page(self, request: Request) -> Response:
        return HTMLResponse(FETCH % VICTIM)

    async def secret(self, request: Request) -> Response:
        self.victim_calls += 1
        return JSONResponse({"secret": "the victim's answer"})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/pub/job/attacker/1.0.0/page", self.page),
                Route("/pub/job/victim/1.0.0/docs", self.page),  # its Swagger page
                Route("/pub/job/victim/1.0.0/docs/", self.page),
                Route("/pub/job/victim/1.0.0/page", self.page),  # any other page of its own
                Route(VICTIM.removeprefix("/pub/job/victim/1.0.0"), self.secret),
                Route(VICTIM, self.secret),
            ]
        )


@pytest.fixture(scope="module")
def jobs() -> Iterator[tuple[Jobs, Server]]:
    jobs = Jobs()
    server = Server(jobs.app())
    yield jobs, server
    server.stop()


@pytest.fixture(params=["front", "asgi"])
def pub(request: pytest.FixtureRequest, jobs: tuple[Jobs, Server]) -> Iterator[str]:
    """Pub's URL, in front of a Lifecycle stand-in that knows both jobs."""
    job_server = jobs[1]
    lifecycle = LifecycleStandIn(
        jobs={"attacker": {"1.0.0": job_server.url}, "victim": {"1.0.0": job_server.url}}
    )
    lifecycle.server = Server(lifecycle.app())
    config = PubConfig(lifecycle_url=lifecycle.server.url)
    if request.param == "front":
        front = FrontServer(config)
        yield front.url
        front.stop()
    else:
        protocol = functools.partial(PubHttpProtocol, pub_config=config)
        app = Server(create_app(config), lifespan="on", proxy_headers=False, http=protocol)
        yield app.url
        app.stop()
    lifecycle.server.stop()


def visit(context: BrowserContext, url: str) -> str:
    """The page's title once its fetch has settled."""
    context.add_cookies(
        [
            {
                "name": "X-Racetrack-Auth",
                "value": ADMIN_TOKEN,
                "domain": "127.0.0.1",
                "path": "/",
                "httpOnly": True,
                "sameSite": "Lax",
            }
        ]
    )
    page = context.new_page()
    page.goto(url)
    page.wait_for_function("document.title !== 'waiting'")
    return page.title()


def test_a_jobs_page_cannot_call_another_job_with_the_visitors_cookie(
    browser_context: BrowserContext, pub: str, jobs: tuple[Jobs, Server]
) -> None:
    before = jobs[0].victim_calls
    title = visit(browser_context, f"{pub}/pub/job/attacker/1.0.0/page")

    assert title.startswith("failed "), title
    assert jobs[0].victim_calls == before  # refused by Pub: the call never reached the job


def test_a_jobs_other_pages_are_sandboxed_too(
    browser_context: BrowserContext, pub: str, jobs: tuple[Jobs, Server]
) -> None:
    title = visit(browser_context, f"{pub}/pub/job/victim/1.0.0/page")

    assert title.startswith("failed "), title


@pytest.mark.parametrize("docs", ["docs", "docs/"])
def test_a_jobs_swagger_page_still_calls_its_job_with_the_cookie(
    browser_context: BrowserContext, pub: str, jobs: tuple[Jobs, Server], docs: str
) -> None:
    before = jobs[0].victim_calls
    title = visit(browser_context, f"{pub}/pub/job/victim/1.0.0/{docs}")

    assert title.startswith("got "), title
    assert json.loads(title.removeprefix("got ")) == {"secret": "the victim's answer"}
    assert jobs[0].victim_calls == before + 1
