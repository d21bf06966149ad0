"""The Lifecycle API's app factory: ``create_app(settings, plugins, engine)``.

The same routes are served at the root and under ``/lifecycle`` (racetrack-client appends
``/lifecycle`` to a remote without a path). Plugins may add routes through ``api_routes``.
The lifespan starts the deployment pipeline and the job watcher, and stops every job the
drivers run when the app stops.
"""

from __future__ import annotations

import html
import importlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio.to_thread
import sqlalchemy.exc
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from racetrack_core.infrastructure import DeployError
from racetrack_core.lifecycle import (
    account_routes,
    async_routes,
    audit_routes,
    call_time_routes,
    consumer_routes,
    deploy_routes,
    grant_routes,
    job_listing,
    job_routes,
    plugin_changes,
    plugin_routes,
    public_endpoint_routes,
    rebuild_routes,
    service_routes,
    token_routes,
)
from racetrack_core.lifecycle.body_limits import BodyLimit
from racetrack_core.lifecycle.context import caller_of
from racetrack_core.lifecycle.deployments import Pipeline
from racetrack_core.lifecycle.openapi import document
from racetrack_core.lifecycle.plugin_follower import PluginFollower
from racetrack_core.lifecycle.responses import (
    DATABASE_UNAVAILABLE,
    ApiError,
    JSONAnswer,
    error_answer,
    handle_api_error,
    handle_database_error,
    handle_database_unavailable,
    handle_http_exception,
    handle_target_unavailable,
    handle_unexpected,
)
from racetrack_core.lifecycle.service import LifecycleService
from racetrack_core.lifecycle.watcher import JobWatcher
from racetrack_core.plugins import PluginManager
from racetrack_core.settings import Settings
from racetrack_core.storage.database import connect, migrate

log = logging.getLogger("racetrack.lifecycle")

MOUNT = "/lifecycle"


def create_app(
    settings: Settings, plugins: PluginManager, engine: Engine | None = None
) -> Starlette:
    """Build the Lifecycle API. ``engine`` defaults to ``settings.database_url``."""
    plugins.load()
    owns_engine = engine is None  # disposed when the app stops
    engine = (
        engine
        if engine is not None
        else connect(
            settings.database_url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        )
    )
    api = [
        *service_routes.routes(),
        *deploy_routes.routes(),
        *job_routes.routes(),
        *job_listing.routes(),
        *rebuild_routes.routes(),
        *plugin_routes.routes(),
        *account_routes.routes(),
        *token_routes.routes(),
        *consumer_routes.routes(),
        *grant_routes.routes(),
        *audit_routes.routes(),
        *public_endpoint_routes.routes(),
        *async_routes.routes(),
        *call_time_routes.routes(),
        *_plugin_routes(plugins),
    ]
    docs = [
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", swagger_page, methods=["GET"]),
        Route("/", lambda request: RedirectResponse("docs"), methods=["GET"]),
        Mount("/swagger-ui", app=StaticFiles(directory=_swagger_assets()), name="swagger-ui"),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        await anyio.to_thread.run_sync(migrate, engine)
        service = LifecycleService(settings, plugins, engine)
        await anyio.to_thread.run_sync(plugin_changes.sync_at_start, service)
        follower = PluginFollower(service)
        follower.start()
        pipeline = Pipeline(service)
        # SQLite is one process's database: that process always watches, even right after
        # a crash. Over PostgreSQL, replicas take turns through the watcher's lease.
        leader = pipeline.leases if engine.dialect.name == "postgresql" else None
        watcher = JobWatcher(service, pipeline, leader)
        app.state.service = service
        app.state.pipeline = pipeline
        app.state.watcher = watcher
        app.state.started_at = round(time.time(), 3)
        app.state.api_routes = api
        watcher.start()
        try:
            yield {}
        finally:
            await anyio.to_thread.run_sync(follower.stop)
            await anyio.to_thread.run_sync(_shut_down, service, pipeline, watcher)
            if owns_engine:
                engine.dispose()

    return Starlette(
        routes=[Mount(MOUNT, routes=[*api, *docs]), *api, *docs],
        lifespan=lifespan,
        middleware=[Middleware(BodyLimit, settings=settings)],
        exception_handlers={
            ApiError: handle_api_error,
            HTTPException: handle_http_exception,
            **dict.fromkeys(DATABASE_UNAVAILABLE, handle_database_unavailable),
            sqlalchemy.exc.DatabaseError: handle_database_error,
            DeployError: handle_target_unavailable,
            Exception: handle_unexpected,
        },
    )


def _shut_down(service: LifecycleService, pipeline: Pipeline, watcher: JobWatcher) -> None:
    watcher.stop()
    pipeline.close()
    service.close()


def _plugin_routes(plugins: PluginManager) -> list[BaseRoute]:
    """Each plugin's routes, under ``/api/v1/plugins/<plugin>``, behind the token check."""
    mounted: list[BaseRoute] = []
    for plugin, call in plugins.implementations("api_routes"):
        routes = []
        for route in call() or []:
            if not isinstance(route, Route | Mount):
                log.warning("plugin %s returned %r from api_routes; ignored", plugin, route)
                continue
            routes.append(route)
        if routes:
            mounted.append(Mount(f"/api/v1/plugins/{plugin}", app=_authenticated(Router(routes))))
    return mounted


def _authenticated(app: ASGIApp) -> ASGIApp:
    """Refuse HTTP requests without a valid token before they reach ``app``."""

    async def guard(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope, receive)
            try:
                await anyio.to_thread.run_sync(caller_of, request)
            except ApiError as exc:
                await error_answer(exc.status, str(exc), exc.kind)(scope, receive, send)
                return
        await app(scope, receive, send)

    return guard


def openapi(request: Request) -> JSONAnswer:
    """The OpenAPI document of every API route (see ``racetrack_core.lifecycle.openapi``)."""
    return JSONAnswer(document(request.app.state.api_routes, MOUNT))


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="swagger-ui/swagger-ui.css"></head>
<body><div id="swagger-ui"></div><script src="swagger-ui/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({{url: "openapi.json", dom_id: "#swagger-ui",
persistAuthorization: true, presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout"}});
</script></body></html>
"""


def swagger_page(_request: Request) -> Response:
    return HTMLResponse(PAGE.format(title=html.escape("Racetrack Lifecycle API")))


def _swagger_assets() -> Path:
    return Path(str(importlib.import_module("swagger_ui_bundle").swagger_ui_path))
