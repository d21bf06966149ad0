"""The Dashboard's app factory: ``create_app(settings)``.

Server-rendered pages under ``/dashboard`` (accounts, jobs, deployments, administration), a
little JavaScript of our own for the live parts, and static files served from the package (no
asset comes from another site, which the Content-Security-Policy enforces).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from importlib import resources

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from racetrack_core.dashboard import (
    account_pages,
    admin_pages,
    admin_system_pages,
    deployment_pages,
    job_pages,
)
from racetrack_core.dashboard.api import LifecycleClient, LifecycleError
from racetrack_core.dashboard.csrf import Csrf, CsrfRefused
from racetrack_core.dashboard.pages import Dashboard, build_templates, refused_page, render
from racetrack_core.settings import Settings

#: Headers on every answer: only our own scripts, styles and images; no framing.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


def create_app(
    settings: Settings, lifecycle_transport: httpx.AsyncBaseTransport | None = None
) -> Starlette:
    """The Dashboard app; it reaches Lifecycle at ``settings.internal_lifecycle_url``."""
    api = LifecycleClient(
        settings.internal_lifecycle_url,
        transport=lifecycle_transport,
        service_token=settings.internal_token,
    )
    board = Dashboard(
        settings=settings,
        api=api,
        csrf=Csrf.from_secret(settings.internal_token),
        templates=build_templates(),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await api.close()

    app = Starlette(
        routes=routes(),
        lifespan=lifespan,
        exception_handlers={
            LifecycleError: refused_page,
            CsrfRefused: refused_page,
            404: not_found,
            405: not_found,
        },
    )
    app.state.dashboard = board
    app.add_middleware(SecurityHeaders)
    return app


def routes() -> list[BaseRoute]:
    static = resources.files("racetrack_core.dashboard").joinpath("static")
    return [
        Route("/", lambda _r: RedirectResponse("/dashboard/"), methods=["GET"]),
        Route("/dashboard", lambda _r: RedirectResponse("/dashboard/"), methods=["GET"]),
        Route("/live", live, methods=["GET"]),
        Route("/health", live, methods=["GET"]),
        Route("/dashboard/live", live, methods=["GET"]),
        Mount("/dashboard/static", app=StaticFiles(directory=str(static)), name="static"),
        *account_pages.routes(),
        *job_pages.routes(),
        *deployment_pages.routes(),
        *admin_pages.routes(),
        *admin_system_pages.routes(),
    ]


def live(_request: Request) -> Response:
    return JSONResponse({"service": "dashboard", "live": True})


async def not_found(request: Request, _exc: Exception) -> Response:
    return render(
        request,
        "error.html",
        getattr(request.state, "viewer", None),
        status_code=404,
        title="Not found",
        message=f"There is no page at {request.url.path}.",
    )


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every answer, and keeps pages out of shared caches."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/dashboard/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
