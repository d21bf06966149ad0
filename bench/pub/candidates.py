"""Candidate Pub proxies, one per HTTP client, behind one shared pure-ASGI shell.

Each candidate authenticates the call through a 5-second cache in front of the stub Lifecycle
(``$BENCH_LIFECYCLE_URL``), then forwards it to the job the stub names, so that the cached
auth path is part of what is measured. Only the HTTP client differs between them:

``aiohttp_app``   aiohttp ``ClientSession`` (a pooled, keep-alive client written in C and Python)
``raw_app``       a hand-written keep-alive pool of asyncio connections parsed by ``httptools``
``httpx_app``     httpx ``AsyncClient``
``pub_plain_app`` the real ``racetrack_core.pub.create_app``, on plain uvicorn (``run.py``'s
                  ``pub_asgi`` serves the same app with Pub's own protocol)

They buffer bodies (the benchmark's bodies are small); the real Pub streams them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol, cast

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[str, str]]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
        b"x-racetrack-auth",
    }
)
RESPONSE_SKIP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"server", b"date"})


class Forwarder(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def get(self, url: str, headers: Headers) -> tuple[int, bytes]: ...
    async def forward(
        self, method: str, url: str, headers: Headers, body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]: ...


def shell(forwarder: Forwarder) -> ASGIApp:
    """The pure-ASGI proxy shared by every candidate; ``forwarder`` does the HTTP."""
    lifecycle_url = os.environ["BENCH_LIFECYCLE_URL"]
    cache: dict[tuple[str, str, str, str], tuple[float, str, str]] = {}

    async def lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await forwarder.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await forwarder.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def answer(send: Send, status: int, payload: dict[str, str]) -> None:
        body = json.dumps(payload).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        parts = scope["path"].split("/", 5)
        if len(parts) < 6 or parts[1] != "pub" or parts[2] != "job":
            await answer(send, 404, {"error": "not found"})
            return
        name, version, rest = parts[3], parts[4], parts[5]
        token = ""
        forwarded: Headers = []
        for key, value in scope["headers"]:
            if key == b"x-racetrack-auth":
                token = value.decode("latin-1")
            if key not in HOP_BY_HOP:
                forwarded.append((key.decode("latin-1"), value.decode("latin-1")))
        cache_key = (name, version, rest, hashlib.sha256(token.encode()).hexdigest())
        entry = cache.get(cache_key)
        now = time.monotonic()
        if entry is None or entry[0] < now:
            url = f"{lifecycle_url}/api/v1/auth/can-call-job/{name}/{version}/{rest}"
            status, raw = await forwarder.get(url, [("X-Racetrack-Auth", token)] if token else [])
            if status != 200:
                await answer(send, 401, {"error": "Unauthenticated: " + json.loads(raw)["error"]})
                return
            job = json.loads(raw)["job"]
            entry = (now + 5.0, job["internal_name"], job["version"])
            cache[cache_key] = entry
        body = b""
        more_body = True
        while more_body:
            message = await receive()
            body += message.get("body", b"")
            more_body = message.get("more_body", False)
        client = scope.get("client")
        forwarded.append(("x-forwarded-for", client[0] if client else ""))
        forwarded.append(("x-caller-name", "User bench"))
        query = scope["query_string"].decode("latin-1")
        target = f"{entry[1]}/pub/job/{name}/{entry[2]}/{rest}" + (f"?{query}" if query else "")
        status, headers, content = await forwarder.forward(scope["method"], target, forwarded, body)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    return app


class AiohttpForwarder:
    def __init__(self) -> None:
        self.session: Any = None

    async def start(self) -> None:
        import aiohttp

        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=4.0),
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        )

    async def close(self) -> None:
        await self.session.close()

    async def get(self, url: str, headers: Headers) -> tuple[int, bytes]:
        async with self.session.get(url, headers=headers) as response:
            return int(response.status), bytes(await response.read())

    async def forward(
        self, method: str, url: str, headers: Headers, body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        from yarl import URL

        async with self.session.request(
            method,
            URL(url, encoded=True),
            headers=headers,
            data=body or None,
            allow_redirects=False,
        ) as response:
            content = await response.read()
            raw = [
                (k.lower(), v) for k, v in response.raw_headers if k.lower() not in RESPONSE_SKIP
            ]
            return int(response.status), raw, bytes(content)


class HttpxForwarder:
    def __init__(self) -> None:
        self.client: Any = None

    async def start(self) -> None:
        import httpx

        # Idle connections expire before the stub Lifecycle's (uvicorn's 5 s keep-alive), or the
        # 1-connection run now and then reuses one that the server has just closed.
        limits = httpx.Limits(max_connections=None, keepalive_expiry=3.0)
        self.client = httpx.AsyncClient(
            limits=limits, transport=httpx.AsyncHTTPTransport(retries=1, limits=limits)
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def get(self, url: str, headers: Headers) -> tuple[int, bytes]:
        response = await self.client.get(url, headers=headers)
        return int(response.status_code), bytes(response.content)

    async def forward(
        self, method: str, url: str, headers: Headers, body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        response = await self.client.request(method, url, headers=headers, content=body)
        raw = [(k.lower(), v) for k, v in response.headers.raw if k.lower() not in RESPONSE_SKIP]
        return int(response.status_code), raw, bytes(response.content)


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection whose answers ``httptools`` parses."""

    def __init__(self) -> None:
        import httptools

        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except Exception as error:
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_exception(error)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def exchange(self, request: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        assert self.transport is not None
        self.headers, self.body = [], []
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        await self.waiter
        return int(self.parser.get_status_code()), self.headers, b"".join(self.body)


class RawForwarder:
    """A minimal keep-alive pool: enough HTTP/1.1 for the benchmark, not for production."""

    def __init__(self) -> None:
        self.idle: dict[tuple[str, int], list[_Connection]] = {}

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        for connections in self.idle.values():
            for connection in connections:
                if connection.transport is not None:
                    connection.transport.close()

    async def _exchange(
        self, method: str, url: str, headers: Headers, body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        address, _, target = url.removeprefix("http://").partition("/")
        host, _, port = address.partition(":")
        key = (host, int(port or 80))
        pool = self.idle.setdefault(key, [])
        connection = None
        while pool:
            candidate = pool.pop()
            if not candidate.closed:
                connection = candidate
                break
        if connection is None:
            _, connection = await asyncio.get_running_loop().create_connection(
                _Connection, host, key[1]
            )
        lines = [f"{method} /{target} HTTP/1.1", f"host: {address}", f"content-length: {len(body)}"]
        lines.extend(f"{name}: {value}" for name, value in headers)
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        status, raw, content = await connection.exchange(request)
        if connection.parser.should_keep_alive() and not connection.closed:
            pool.append(connection)
        elif connection.transport is not None:
            connection.transport.close()
        return status, raw, content

    async def get(self, url: str, headers: Headers) -> tuple[int, bytes]:
        status, _, content = await self._exchange("GET", url, headers, b"")
        return status, content

    async def forward(
        self, method: str, url: str, headers: Headers, body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        status, raw, content = await self._exchange(method, url, headers, body)
        kept = [(k, v) for k, v in raw if k not in RESPONSE_SKIP and k != b"content-length"]
        kept.append((b"content-length", b"%d" % len(content)))
        return status, kept, content


def aiohttp_app() -> ASGIApp:
    return shell(AiohttpForwarder())


def httpx_app() -> ASGIApp:
    return shell(HttpxForwarder())


def raw_app() -> ASGIApp:
    return shell(RawForwarder())


def pub_plain_app() -> ASGIApp:
    from racetrack_core.pub import PubConfig, create_app

    return create_app(PubConfig(lifecycle_url=os.environ["BENCH_LIFECYCLE_URL"]))
