"""The Dashboard's service (port 7103, under ``/dashboard``).

Its pages (accounts, jobs, deployments, administration) arrive with the Dashboard issue;
until then the service answers its health routes and a page that links to what exists.
"""

from __future__ import annotations

import html

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from racetrack_core.settings import Settings

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Racetrack</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>Racetrack</h1>
<p>The Dashboard's pages are not built yet. Meanwhile:</p>
<ul><li><a href="{lifecycle}/docs">Lifecycle API (Swagger)</a></li>
<li>Pub gateway: <code>{pub}</code></li></ul></main></body></html>
"""


def create_app(settings: Settings) -> Starlette:
    def home(_request: Request) -> Response:
        return HTMLResponse(
            PAGE.format(
                lifecycle=html.escape(settings.external_lifecycle_url),
                pub=html.escape(settings.external_pub_url),
            )
        )

    def live(_request: Request) -> Response:
        return JSONResponse({"service": "dashboard", "live": True})

    return Starlette(
        routes=[
            Route("/", lambda _r: RedirectResponse("/dashboard/"), methods=["GET"]),
            Route("/dashboard", lambda _r: RedirectResponse("/dashboard/"), methods=["GET"]),
            Route("/dashboard/", home, methods=["GET"]),
            Route("/live", live, methods=["GET"]),
            Route("/health", live, methods=["GET"]),
        ]
    )
