"""WebSocket calls through Pub, against a real job and a Lifecycle stand-in on 127.0.0.1.

Pub runs under uvicorn as in ``conftest.py``; uvicorn needs a WebSocket library for this
(``websockets``, or ``wsproto``), and these tests use ``websockets``' client.
"""

from __future__ import annotations

import json
import queue
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from racetrack_core.pub import PubConfig, create_app
from racetrack_core.pub.asgi.responses import Receive, Scope, Send
from racetrack_core.pub.asgi.serving import PubHttpProtocol
from tests.pub.servers import ADMIN_TOKEN, GUEST_TOKEN, LifecycleStandIn, Server

websockets = pytest.importorskip("websockets", reason="uvicorn serves WebSockets with it")
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402
from websockets.sync.client import ClientConnection, connect  # noqa: E402

pytestmark = pytest.mark.slow

#: How the job saw each caller's close: (code, reason), in order.
CLOSES_SEEN: queue.Queue[tuple[int, str]] = queue.Queue()


# --- the job: an echo over WebSocket ------------------------------------------------------


async def echo(websocket: WebSocket) -> None:
    """Say what the handshake looked like, then echo; ``close <code> <reason>`` closes."""
    offered = websocket.scope.get("subprotocols", [])
    # The last one offered, so that a test can tell the job's choice from the caller's first.
    chosen = offered[-1] if offered else None
    await websocket.accept(subprotocol=chosen)
    hello = {
        "path": websocket.scope["raw_path"].decode(),
        "query": websocket.scope["query_string"].decode(),
        "headers": [[name, value] for name, value in websocket.headers.items()],
        "subprotocol": chosen,
    }
    await websocket.send_text(json.dumps(hello))
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            CLOSES_SEEN.put((message.get("code", 1005), message.get("reason") or ""))
            return
        text = message.get("text")
        if text is not None and text.startswith("close "):
            _, code, reason = text.split(" ", 2)
            await websocket.close(int(code), reason)
            return
        if text is not None:
            await websocket.send_text(text)
        else:
            await websocket.send_bytes(message["bytes"])


def websocket_job_app() -> Starlette:
    return Starlette(routes=[WebSocketRoute("/pub/job/{name}/{version}/echo", echo)])


@pytest.fixture(scope="module")
def job() -> Iterator[Server]:
    """The job that conftest's Lifecycle stand-in points ``adder`` at."""
    server = Server(websocket_job_app())
    yield server
    server.stop()


# --- helpers ------------------------------------------------------------------------------


def ws_url(pub: str, path: str) -> str:
    return "ws" + pub.removeprefix("http") + path


def open_echo(pub: str, path: str = "/pub/job/adder/latest/echo", **options: Any) -> Any:
    options.setdefault("additional_headers", {"X-Racetrack-Auth": ADMIN_TOKEN})
    return connect(ws_url(pub, path), open_timeout=10, close_timeout=5, **options)


def hello(connection: ClientConnection) -> dict[str, Any]:
    """The job's first message: the path, query and headers it was called with."""
    message = json.loads(connection.recv(timeout=10))
    message["headers"] = dict(message["headers"])
    return dict(message)


def closed_by_pub(connection: ClientConnection) -> tuple[int, str]:
    """The close code and reason that ended ``connection``."""
    with pytest.raises(ConnectionClosed) as closed:
        connection.recv(timeout=10)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


def refusal(pub: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(pub, path), additional_headers=headers, open_timeout=10)
    return refused.value.response.status_code, bytes(refused.value.response.body or b"")


# --- relaying -----------------------------------------------------------------------------


def test_text_and_binary_messages_are_echoed_through_pub(pub: str) -> None:
    with open_echo(pub) as connection:
        hello(connection)
        connection.send("hello")
        assert connection.recv(timeout=10) == "hello"
        connection.send(b"\x00\x01binary\xff")
        assert connection.recv(timeout=10) == b"\x00\x01binary\xff"


def test_the_token_cookie_is_accepted_and_not_forwarded(pub: str) -> None:
    cookie = f"theme=dark; X-Racetrack-Auth={ADMIN_TOKEN}; lang=en"
    with open_echo(pub, additional_headers={"Cookie": cookie}) as connection:
        seen = hello(connection)["headers"]
        connection.send("via cookie")
        assert connection.recv(timeout=10) == "via cookie"

    assert seen["cookie"] == "theme=dark; lang=en"


def test_the_job_gets_pubs_headers_and_never_the_token(pub: str) -> None:
    headers = {
        "X-Racetrack-Auth": ADMIN_TOKEN,
        "X-Racetrack-Esc-Auth": ADMIN_TOKEN,
        "X-Request-Tracing-Id": "trace-ws-1",
        "X-Caller-Name": "made up",
        "X-Custom": "kept",
    }
    with open_echo(pub, additional_headers=headers) as connection:
        seen = hello(connection)["headers"]
        tracing = connection.response.headers["x-request-tracing-id"]

    assert ADMIN_TOKEN not in json.dumps(seen)
    assert seen["x-request-tracing-id"] == tracing == "trace-ws-1"
    assert seen["x-caller-name"] == "User admin"
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == pub.removeprefix("http://")
    assert seen["x-custom"] == "kept"


def test_latest_resolves_and_the_path_and_query_reach_the_job(pub: str) -> None:
    with open_echo(pub, "/pub/job/adder/latest/echo?room=7&x=%2F") as connection:
        seen = hello(connection)

    assert seen["path"] == "/pub/job/adder/1.2.0/echo"
    assert seen["query"] == "room=7&x=%2F"


def test_the_root_route_and_an_exact_version_work_too(pub: str) -> None:
    with open_echo(pub, "/job/adder/1.0.0/echo") as connection:
        assert hello(connection)["path"] == "/pub/job/adder/1.0.0/echo"


def test_subprotocols_are_offered_to_the_job_and_its_choice_is_accepted(pub: str) -> None:
    with open_echo(pub, subprotocols=["chat.v1", "chat.v2"]) as connection:
        seen = hello(connection)
        assert connection.subprotocol == "chat.v2"

    assert seen["subprotocol"] == "chat.v2"
    assert "chat.v1" in seen["headers"]["sec-websocket-protocol"]


def test_the_jobs_close_code_and_reason_reach_the_caller(pub: str) -> None:
    with open_echo(pub) as connection:
        hello(connection)
        connection.send("close 4001 job is done")

        assert closed_by_pub(connection) == (4001, "job is done")


def test_the_callers_close_code_and_reason_reach_the_job(pub: str) -> None:
    while not CLOSES_SEEN.empty():
        CLOSES_SEEN.get_nowait()
    with open_echo(pub) as connection:
        hello(connection)
        connection.close(code=4002, reason="caller is done")

    assert CLOSES_SEEN.get(timeout=10) == (4002, "caller is done")


def test_calls_are_counted_per_job_version(pub: str) -> None:
    with open_echo(pub) as connection:
        hello(connection)

    metrics = httpx.get(f"{pub}/pub/metrics", timeout=10).text
    labels = 'job_name="adder",job_version="1.2.0"'
    assert f"pub_job_proxy_requests_total{{{labels}}} 1.0" in metrics
    assert f'pub_job_proxy_response_codes_total{{{labels},status="101"}} 1.0' in metrics


# --- refusals -----------------------------------------------------------------------------


def test_no_token_gets_the_user_guides_401(pub: str) -> None:
    status, body = refusal(pub, "/pub/job/adder/latest/echo", {})

    assert status == 401
    assert body == b'{"error":"Unauthenticated: no header X-Racetrack-Auth: not logged in"}'


def test_a_caller_without_the_permission_gets_403(pub: str) -> None:
    status, body = refusal(pub, "/pub/job/adder/latest/echo", {"X-Racetrack-Auth": GUEST_TOKEN})

    assert status == 403
    assert json.loads(body) == {"error": "Forbidden: User guest may not call job adder"}
    metrics = httpx.get(f"{pub}/pub/metrics", timeout=10).text
    assert 'pub_auth_failed_total{job_name="adder",job_version="latest",status="403"}' in metrics


def test_an_unknown_job_and_a_malformed_path_get_404(pub: str) -> None:
    admin = {"X-Racetrack-Auth": ADMIN_TOKEN}
    unknown, body = refusal(pub, "/pub/job/nobody/latest/echo", admin)
    malformed, _ = refusal(pub, "/pub/job/adder", admin)

    assert (unknown, malformed) == (404, 404)
    assert json.loads(body) == {"error": "Job was not found: no job named nobody in version latest"}


def test_a_path_that_is_no_job_call_is_refused(pub: str) -> None:
    status, _ = refusal(pub, "/pub/health", {"X-Racetrack-Auth": ADMIN_TOKEN})

    assert status == 403


def without_denial_responses(app: Any) -> Any:
    """``app`` behind a server that cannot answer a handshake with an HTTP response."""

    async def served(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope = {**scope, "extensions": {}}
        await app(scope, receive, send)

    return served


@pytest.fixture
def pub_without_denial_responses(lifecycle: LifecycleStandIn) -> Iterator[str]:
    assert lifecycle.server is not None
    app = create_app(PubConfig(lifecycle_url=lifecycle.server.url))
    server = Server(
        without_denial_responses(app), lifespan="on", proxy_headers=False, http=PubHttpProtocol
    )
    yield server.url
    server.stop()


def test_without_http_denials_a_refusal_closes_with_1008_and_the_reason(
    pub_without_denial_responses: str,
) -> None:
    pub = pub_without_denial_responses
    with open_echo(pub, additional_headers={}) as anonymous:
        unauthenticated = closed_by_pub(anonymous)
    with open_echo(pub, additional_headers={"X-Racetrack-Auth": GUEST_TOKEN}) as guest:
        forbidden = closed_by_pub(guest)

    assert unauthenticated == (1008, "Unauthenticated: no header X-Racetrack-Auth: not logged in")
    assert forbidden == (1008, "Forbidden: User guest may not call job adder")


# --- the job failing ----------------------------------------------------------------------


def test_a_job_that_is_down_gets_1011_naming_it(pub: str) -> None:
    with open_echo(pub, "/pub/job/ghost/latest/echo") as connection:
        code, reason = closed_by_pub(connection)

    assert code == 1011
    assert reason == (
        "Reverse proxy error: job ghost 1.0.0 is not reachable (connection refused); it may be down"
    )
    metrics = httpx.get(f"{pub}/pub/metrics", timeout=10).text
    labels = 'job_name="ghost",job_version="1.0.0",kind="connection_refused"'
    assert f"pub_job_proxy_errors_total{{{labels}}} 1.0" in metrics


def test_a_job_that_refuses_the_handshake_gets_1011_with_its_status(pub: str) -> None:
    with open_echo(pub, "/pub/job/adder/latest/no-such-socket") as connection:
        code, reason = closed_by_pub(connection)

    assert code == 1011
    assert reason == (
        "Reverse proxy error: job adder 1.2.0 refused the WebSocket handshake with 403"
    )
