"""Pub's asynchronous calls, with real servers on 127.0.0.1.

Lifecycle here is the real app for the task storage, with the stand-in of ``servers.py``
answering ``can-call-job`` (it knows Pub's internal token as a staff caller). Both, Pub and the
job, each run under uvicorn in a thread; the database is a SQLite file, so a "restart" is new
servers over the same file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse

from racetrack_core import PluginManager
from racetrack_core.lifecycle import create_app as create_lifecycle
from racetrack_core.pub import PubConfig, create_app
from racetrack_core.pub.asgi.asynccalls.store import task_key
from racetrack_core.pub.asgi.responses import Receive, Scope, Send
from racetrack_core.pub.asgi.serving import PubHttpProtocol
from racetrack_core.settings import Settings
from racetrack_core.storage.database import connect
from tests.pub.servers import ADMIN_TOKEN, GUEST_TOKEN, LifecycleStandIn, Server, admin, refused_url

pytestmark = pytest.mark.slow

INTERNAL_TOKEN = "the-services-internal-token-1234"
UNAUTHENTICATED = {"error": "Unauthenticated: no header X-Racetrack-Auth: not logged in"}


class StandIn(LifecycleStandIn):
    """The stand-in, treating Pub's internal token as the admin's (Lifecycle's staff caller)."""

    async def can_call_job(self, request: Request) -> JSONResponse:
        if request.headers.get("x-racetrack-auth") == INTERNAL_TOKEN:
            scope = dict(request.scope)
            scope["headers"] = [
                (k, ADMIN_TOKEN.encode() if k == b"x-racetrack-auth" else v)
                for k, v in request.scope["headers"]
            ]
            request = Request(scope, request.receive)
        return await super().can_call_job(request)


class Lifecycle:
    """The real Lifecycle (task storage) behind one address with the stand-in (permissions)."""

    def __init__(self, home: Path, stand_in: StandIn) -> None:
        settings = Settings(home=home, internal_token=INTERNAL_TOKEN)
        self.engine = connect(settings.database_url)
        real = create_lifecycle(settings, PluginManager(), self.engine)
        permissions = stand_in.app()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["path"].startswith("/api/v1/auth/"):
                await permissions(scope, receive, send)
            else:
                await real(scope, receive, send)

        self.server = Server(app, lifespan="on")
        self.url = self.server.url

    def stop(self) -> None:
        self.server.stop()
        self.engine.dispose()


@pytest.fixture
def stand_in(job: Server) -> StandIn:
    return StandIn(
        jobs={
            "adder": {"1.0.0": job.url, "1.2.0": job.url},
            "ghost": {"1.0.0": refused_url()},
        }
    )


@pytest.fixture
def services(tmp_path: Path, stand_in: StandIn) -> Iterator[Callable[..., tuple[Lifecycle, str]]]:
    """``services(**pub_config) -> (lifecycle, pub URL)``; call again to "restart" both."""
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
        config = PubConfig(lifecycle_url=lifecycle.url, **settings)
        pub = Server(create_app(config), lifespan="on", proxy_headers=False, http=PubHttpProtocol)
        started.append(pub)
        return lifecycle, pub.url

    yield start
    for server in reversed(started):
        server.stop()


def submit(client: httpx.Client, pub: str, path: str, **kwargs: Any) -> str:
    answer = client.post(f"{pub}/pub/async/new/job/{path}", **kwargs)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["status"] == "ongoing"
    task_id: str = body["task_id"]
    return task_id


def test_an_async_call_answers_at_once_and_polls_the_jobs_original_answer(
    client: httpx.Client, services: Callable[..., tuple[Lifecycle, str]]
) -> None:
    _, pub = services()
    task_id = submit(
        client,
        pub,
        "adder/latest/echo?x=1",
        content=b"payload",
        headers=admin(**{"X-Request-Tracing-Id": "trace-42", "Cookie": "a=b"}),
    )
    assert len(task_id) >= 22  # 128 random bits

    answer = client.get(f"{pub}/pub/async/task/{task_id}/poll")
    status = client.get(f"{pub}/async/task/{task_id}/status")

    assert answer.status_code == 200, answer.text
    assert answer.headers["x-job-header"] == "from-job"
    assert answer.headers["content-security-policy"].startswith("sandbox ")  # Pub's origin
    echoed = answer.json()
    assert echoed["method"] == "POST"
    assert echoed["path"] == "/pub/job/adder/1.2.0/echo"
    assert echoed["query"] == "x=1"
    assert echoed["body"] == "payload"
    headers = dict(echoed["headers"])
    assert headers["x-caller-name"] == "User admin"
    assert headers["x-request-tracing-id"] == "trace-42"
    assert headers["cookie"] == "a=b"
    assert "x-racetrack-auth" not in headers
    assert status.json() == {"task_id": task_id, "status": "completed"}
    # The result can be read again until it expires.
    assert client.get(f"{pub}/pub/async/task/{task_id}/poll").json() == echoed


def test_the_token_is_neither_forwarded_nor_stored(
    client: httpx.Client, services: Callable[..., tuple[Lifecycle, str]]
) -> None:
    lifecycle, pub = services()
    task_id = submit(
        client, pub, "adder/latest/echo", headers={"Cookie": f"X-Racetrack-Auth={ADMIN_TOKEN}"}
    )
    answer = client.get(f"{pub}/pub/async/task/{task_id}/poll")

    assert ADMIN_TOKEN not in answer.text
    with lifecycle.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT * FROM async_job_call").fetchall()
    assert len(rows) == 1
    assert ADMIN_TOKEN not in repr(rows)
    assert task_id not in repr(rows)  # stored under a digest of the id
    assert rows[0][0] == task_key(task_id)


@pytest.mark.parametrize("prefix", ["/pub", ""])
def test_submission_is_authorised_exactly_as_a_synchronous_call(
    client: httpx.Client, services: Callable[..., tuple[Lifecycle, str]], prefix: str
) -> None:
    _, pub = services()
    url = f"{pub}{prefix}/async/new/job"

    missing = client.post(f"{url}/adder/latest/echo")
    forbidden = client.post(f"{url}/adder/latest/echo", headers={"X-Racetrack-Auth": GUEST_TOKEN})
    unknown = client.post(f"{url}/nobody/latest/echo", headers=admin())
    malformed = client.post(f"{url}/ad$der/latest/echo", headers=admin())
    sync = client.post(f"{pub}{prefix}/job/adder/latest/echo", headers={"X-Racetrack-Auth": "x"})
    bad_token = client.post(f"{url}/adder/latest/echo", headers={"X-Racetrack-Auth": "x"})

    assert (missing.status_code, missing.json()) == (401, UNAUTHENTICATED)
    assert forbidden.status_code == 403
    assert forbidden.json() == {"error": "Forbidden: User guest may not call job adder"}
    assert unknown.status_code == 404
    assert unknown.json()["error"].startswith("Job was not found")
    assert malformed.status_code == 404
    assert (bad_token.status_code, bad_token.json()) == (sync.status_code, sync.json())


def test_a_jobs_error_answer_completes_the_task(
    client: httpx.Client, services: Callable[..., tuple[Lifecycle, str]]
) -> None:
    _, pub = services()
    task_id = submit(client, pub, "adder/1.0.0/status/500", headers=admin())

    answer = client.get(f"{pub}/pub/async/task/{task_id}/poll")

    assert answer.status_code == 500
    assert answer.json() == {"status": 500}
    assert client.get(f"{pub}/pub/async/task/{task_id}/status").json()["status"] == "completed"


def test_a_refused_connection_is_retried_then_the_task_fails_saying_why(
    client: httpx.Client, services: Callable[..., tuple[Lifecycle, str]]
) -> None:
    _, pub = services(async_max_attempts=3)
    task_id = submit(client, pub, "ghost/1.0.0/echo", headers=admin())

    answer = client.get(f"{pub}/pub/async/task/{task_id}/poll")

    assert answer.status_code == 500
    assert answer.json() == {
        "error": "Asynchronous call failed: job ghost 1.0.0 is not reachable "
        "(connection refused); gave up after 3 attempt(s)",
        "task_id": task_id,
    }
    assert client.get(f"{pub}/pub/async/task/{task_id}/status").json() == {
        "task_id": task_id,
        "status": "failed",
    }


def test_a_retry_asks_lifecycle_again_where_the_job_is(
    client: httpx.Client,
    services: Callable[..., tuple[Lifecycle, str]],
    stand_in: StandIn,
    job: Server,
) -> None:
    _, pub = services(async_retry_delay=0.5)
    task_id = submit(client, pub, "ghost/1.0.0/echo", headers=admin())
    stand_in.jobs["ghost"]["1.0.0"] = job.url  # redeployed elsewhere

    answer = client.get(f"{pub}/pub/async/task/{task_id}/poll")

    assert answer.status_code == 200, answer.text
    assert answer.json()["path"] == "/pub/job/ghost/1.0.0/echo"


def test_a_deleted_job_fails_the_task_with_a_clear_error(
    client: httpx.Client, services: Callable[..., tuple[Lifecycle, str]], stand_in: StandIn
) -> None:
    _, pub = services(async_retry_delay=0.5)
    task_id = submit(client, pub, "ghost/1.0.0/echo", headers=admin())
    del stand_in.jobs["ghost"]

    answer = client.get(f"{pub}/pub/async/task/{task_id}/poll")

    assert answer.status_code == 500
    assert answer.json()["error"] == (
        "Asynchronous call failed: job ghost 1.0.0 cannot be called any more: "
        "Job was not found: no job named ghost in version 1.0.0"
    )


def test_poll_answers_202_while_the_call_runs_and_404_for_unknown_tasks(
    client: httpx.Client, services: Callable[..., tuple[Lifecycle, str]]
) -> None:
    _, pub = services(async_poll_timeout=0.5)
    task_id = submit(client, pub, "adder/latest/slow", headers=admin())

    early = client.get(f"{pub}/pub/async/task/{task_id}/poll")
    status = client.get(f"{pub}/pub/async/task/{task_id}/status")
    unknown = client.get(f"{pub}/pub/async/task/AAAAAAAAAAAAAAAAAAAAAA/poll")
    unknown_status = client.get(f"{pub}/pub/async/task/AAAAAAAAAAAAAAAAAAAAAA/status")
    malformed = client.get(f"{pub}/pub/async/task/%2e%2e/poll")

    assert (early.status_code, early.json()) == (202, {"task_id": task_id, "status": "ongoing"})
    assert status.json() == {"task_id": task_id, "status": "ongoing"}
    assert unknown.status_code == unknown_status.status_code == malformed.status_code == 404
    assert "unknown, or it has expired" in unknown.json()["error"]
    deadline = time.monotonic() + 10
    while (answer := client.get(f"{pub}/pub/async/task/{task_id}/poll")).status_code == 202:
        assert time.monotonic() < deadline
    assert answer.json() == {"slow": True}


def test_an_expired_task_is_not_found(
    client: httpx.Client, services: Callable[..., tuple[Lifecycle, str]]
) -> None:
    _, pub = services(async_call_lifetime=1.0)
    task_id = submit(client, pub, "adder/latest/echo", headers=admin())
    assert client.get(f"{pub}/pub/async/task/{task_id}/poll").status_code == 200
    time.sleep(1.1)

    assert client.get(f"{pub}/pub/async/task/{task_id}/poll").status_code == 404


def test_a_call_interrupted_by_a_restart_is_run_again_and_answered(
    client: httpx.Client, services: Callable[..., tuple[Lifecycle, str]]
) -> None:
    _, pub = services()
    task_id = submit(client, pub, "adder/latest/slow", headers=admin())
    time.sleep(0.5)  # the job is working on it

    _, pub = services()  # Pub and Lifecycle stop, and start again over the same database

    answer = client.get(f"{pub}/pub/async/task/{task_id}/poll", timeout=20)
    assert answer.status_code in (200, 202), answer.text
    deadline = time.monotonic() + 15
    while answer.status_code == 202 and time.monotonic() < deadline:
        answer = client.get(f"{pub}/pub/async/task/{task_id}/poll", timeout=20)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"slow": True}


def test_a_finished_task_survives_a_restart(
    client: httpx.Client, services: Callable[..., tuple[Lifecycle, str]]
) -> None:
    _, pub = services()
    task_id = submit(client, pub, "adder/latest/echo", content=b"kept", headers=admin())
    assert client.get(f"{pub}/pub/async/task/{task_id}/status").status_code == 200

    _, pub = services()

    answer = client.get(f"{pub}/pub/async/task/{task_id}/poll")
    assert answer.status_code == 200, answer.text
    assert answer.json()["body"] == "kept"


def test_without_an_internal_token_async_calls_are_off(
    client: httpx.Client, services: Callable[..., tuple[Lifecycle, str]]
) -> None:
    _, pub = services(internal_token=None)

    answer = client.post(f"{pub}/pub/async/new/job/adder/latest/echo", headers=admin())

    assert answer.status_code == 503
    assert "internal token" in answer.json()["error"]


def test_a_body_over_the_limit_is_refused(
    client: httpx.Client, services: Callable[..., tuple[Lifecycle, str]]
) -> None:
    _, pub = services(async_max_body=10)

    answer = client.post(
        f"{pub}/pub/async/new/job/adder/latest/echo", content=b"x" * 11, headers=admin()
    )

    assert answer.status_code == 413
