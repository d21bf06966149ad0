"""The call fast path: ``POST .../api/v1/<endpoint>`` goes to the calls ahead of Starlette's router.

Starlette would try every other route first (the probes, metrics, OpenAPI and Swagger routes;
for a call that Pub forwards, to ``/pub/job/NAME/VERSION/api/v1/...``, all of them, then the
prefix routes, then the same list inside the mount) and wrap the call in a ``Request``, its
exception handling and a ``Response``: together about as much work as the call itself. This
middleware matches the two shapes of a call's path with string operations and hands it to
``calls.CallService``; every other request goes on to Starlette unchanged. It sits inside
Starlette's ``ServerErrorMiddleware``, so an unexpected error is answered 500 as before.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from .calls import CallService
from .scopes import route_path

API = "/api/v1/"
PUB_PREFIX = "/pub/job/"
#: The original's oldest spelling of the prefix, still served.
FATMAN_PREFIX = "/pub/fatman/"
#: ``webview_app`` pages take POSTs of their own: never calls.
WEBVIEW = "/webview"


class CallRouter:
    """ASGI middleware that serves calls itself and passes everything else to ``app``."""

    def __init__(self, app: ASGIApp, calls: CallService, job_name: str) -> None:
        self.app = app
        self.calls = calls
        self.job_name = job_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "GET"):
            path = call_path(route_path(scope), self.job_name)
            if path is not None and not (path == WEBVIEW or path.startswith(WEBVIEW + "/")):
                if scope["method"] == "POST":
                    await self.calls.serve(path, scope, receive, send)
                    return
                # GET: an auxiliary_endpoints_v2 route, else the routes (parameters, static).
                if await self.calls.serve_get(path, scope, receive, send):
                    return
        await self.app(scope, receive, send)


def call_path(path: str, job_name: str) -> str | None:
    """The endpoint (``/perform``) that a URL path calls, or ``None`` if it is not a call.

    A call is ``/api/v1/<endpoint>`` or ``/pub/job/<job_name>/<version>/api/v1/<endpoint>``
    (or ``/pub/fatman/...``, the original's oldest spelling),
    as Starlette's routes ``/api/v1/{path:path}`` and ``Mount("/pub/job/NAME/{version}")``
    match them; without a job name (``JOB_NAME`` unset) any name is taken.
    """
    if path.startswith(API):
        return path[len(API) - 1 :]
    if not path.startswith((PUB_PREFIX, FATMAN_PREFIX)):
        return None
    parts = path.split("/", 5)  # "", "pub", "job", name, version, rest
    if len(parts) < 6 or not parts[3] or not parts[4] or not parts[5].startswith(API[1:]):
        return None
    if job_name and parts[3] != job_name:
        return None
    return parts[5][len(API) - 2 :]
