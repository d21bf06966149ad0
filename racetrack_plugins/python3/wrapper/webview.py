"""``webview_app``: the job's own web pages, served under ``/api/v1/webview/``.

The job's ``webview_app(base_url)`` returns a WSGI app (Flask's ``app.wsgi_app``, Django) or an
ASGI app (FastAPI, Starlette); the number of parameters of the app tells which, as in the
original. ``base_url`` is the public prefix of the pages,
``/pub/job/<name>/<version>/api/v1/webview``:

- a WSGI app sees that prefix in ``PATH_INFO`` (so Flask routes are written
  ``@app.route(base_url + '/')``), however the request arrived;
- an ASGI app is mounted as Starlette mounts one: ``root_path`` ends in ``/api/v1/webview``.

A ``static`` folder in the job directory is served at ``/api/v1/webview/static/``. WSGI answers
are collected whole in a worker thread before they are sent (no streaming).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import io
import logging
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from .context import RequestContext
from .errors import EntrypointError
from .scopes import route_path

logger = logging.getLogger("racetrack.job")
WEBVIEW = "/api/v1/webview"


def make_webview(instance: object, base_url: str, max_body_bytes: int) -> ASGIApp | None:
    """The ASGI app for the instance's ``webview_app``, or ``None`` if it has none."""
    factory = getattr(instance, "webview_app", None)
    if not callable(factory):
        return None
    app = factory(base_url)
    if app is None:
        return None
    try:
        arity = len(inspect.signature(app).parameters)
    except (TypeError, ValueError):
        raise EntrypointError(f"webview_app() returned {app!r}, not a WSGI or ASGI app") from None
    if arity == 2:
        logger.info("serving the WSGI webview app at %s", base_url)
        return WsgiAdapter(app, base_url, max_body_bytes)
    if arity == 3:
        logger.info("serving the ASGI webview app at %s", base_url)
        asgi: ASGIApp = app
        return asgi
    raise EntrypointError(
        f"webview_app() returned an app taking {arity} arguments; a WSGI app takes "
        "(environ, start_response), an ASGI app (scope, receive, send)"
    )


class WsgiAdapter:
    """Serves a WSGI app over ASGI; each request runs in a thread with the body read whole."""

    def __init__(self, app: Callable[..., Iterable[bytes]], base_url: str, limit: int) -> None:
        self.app = app
        self.base_url = base_url
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.limit:
                await JSONResponse({"error": "request body too large"}, 413)(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        environ = self.environ(scope, bytes(body))
        run = contextvars.copy_context().run
        status, headers, content = await asyncio.get_running_loop().run_in_executor(
            None, run, self.call, environ
        )
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    def environ(self, scope: Scope, body: bytes) -> dict[str, Any]:
        sub_path = route_path(scope) or "/"
        server = scope.get("server") or ("127.0.0.1", 80)
        client = scope.get("client") or ("", 0)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": scope["method"],
            "SCRIPT_NAME": "",
            "PATH_INFO": self.base_url + sub_path,
            "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
            "SERVER_NAME": str(server[0]),
            "SERVER_PORT": str(server[1]),
            "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
            "REMOTE_ADDR": str(client[0]),
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scope.get("scheme", "http"),
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").upper().replace("-", "_")
            value = raw_value.decode("latin-1")
            if name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                if name == "CONTENT_TYPE":
                    environ[name] = value
                continue
            key = "HTTP_" + name
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    def call(self, environ: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            started[:] = [status, headers]
            return chunks.append

        chunks: list[bytes] = []
        result = self.app(environ, start_response)
        try:
            for chunk in result:
                chunks.append(chunk)
        finally:
            close = getattr(result, "close", None)
            if callable(close):
                close()
        status, headers = started if started else ("500 Internal Server Error", [])
        encoded = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        return int(status.split(" ", 1)[0]), encoded, b"".join(chunks)


class WebviewDispatcher:
    """The ``/api/v1/webview`` mount: the job's webview (once ready) and its ``static`` folder."""

    def __init__(self, job_dir: Path) -> None:
        static = job_dir / "static"
        self.static: ASGIApp | None = StaticFiles(directory=static) if static.is_dir() else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = scope["app"].state.runtime
        webview: ASGIApp | None = runtime.webview
        if webview is None:
            message = "this job has no webview_app" if runtime.ready else "the job is starting"
            await JSONResponse({"error": message, "type": "NotFound"}, 404)(scope, receive, send)
            return
        path = route_path(scope)
        if self.static is not None and path.startswith("/static/"):
            await Mount("/static", app=self.static)(scope, receive, send)
            return
        context: RequestContext = runtime.context
        bound = context.bind(scope)
        try:
            await webview(scope, receive, send)
        finally:
            context.reset(bound)


class SlashForwarder:
    """``/api/v1/webview`` is served as ``/api/v1/webview/``, as the original did (no redirect)."""

    def __init__(self, mount: Mount) -> None:
        self.mount = mount

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        forwarded = {**scope, "path": scope["path"] + "/", "raw_path": raw_path + b"/"}
        await self.mount(forwarded, receive, send)


def routes(job_dir: Path) -> list[Route | Mount]:
    mount = Mount(WEBVIEW, app=WebviewDispatcher(job_dir))
    return [Route(WEBVIEW, SlashForwarder(mount)), mount]
