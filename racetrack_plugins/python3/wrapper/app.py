"""The app factory of the job wrapper: the user's class served as a Starlette app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Mount, Route

from . import health, metrics, openapi, parameters, static, swagger, webview
from .calls import CallService
from .entrypoint import load_entrypoint_class
from .limiter import CallLimiter
from .router import CallRouter
from .runtime import JobRuntime
from .settings import WrapperSettings
from .workers import DEFAULT_THREADS, WorkerThreads


def create_app(
    entrypoint_path: str | Path,
    entrypoint_class: str | None,
    job_dir: Path,
    settings: WrapperSettings,
) -> Starlette:
    """Load the entrypoint class now; make its instance in the background once the app starts.

    Every route is served at the root and under ``/pub/job/{JOB_NAME}/{any version}``. Calls
    (``POST .../api/v1/<endpoint>``) are served by ``CallRouter`` ahead of the routes.
    """
    cls = load_entrypoint_class(entrypoint_path, entrypoint_class, job_dir)
    return create_class_app(cls, job_dir, settings)


def create_class_app(
    cls: type, job_dir: Path, settings: WrapperSettings, instance: object | None = None
) -> Starlette:
    """``create_app`` for a class already imported, or for an ``instance`` already made."""
    runtime = JobRuntime(
        cls,
        job_dir,
        webview_base_url=webview_base_url(settings),
        max_body_bytes=settings.max_body_bytes,
        instance=instance,
    )
    limiter = CallLimiter(settings.max_concurrency, settings.max_concurrency_queue)
    # No more threads than anyio's default limit, which def methods ran under before; fewer
    # when max_concurrency refuses the calls that would need them.
    workers = WorkerThreads(min(settings.max_concurrency or DEFAULT_THREADS, DEFAULT_THREADS))
    call_metrics = metrics.CallMetrics()
    calls = CallService(
        runtime,
        max_body_bytes=settings.max_body_bytes,
        metrics=call_metrics,
        limiter=limiter,
        workers=workers,
        context=runtime.context,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime.start()
        try:
            yield
        finally:
            workers.shutdown()

    job_routes: list[BaseRoute] = [
        Route("/", home, methods=["GET"]),
        *health.routes,
        *metrics.routes,
        *openapi.routes,
        *swagger.routes(),
        *parameters.routes,
        *webview.routes(job_dir),
        *static.routes,
    ]
    name = settings.job_name or "{job_name}"
    prefixes = [f"/pub/job/{name}/{{version}}", f"/pub/fatman/{name}/{{version}}"]
    app = Starlette(
        routes=[
            *job_routes,
            *(Route(prefix, home, methods=["GET"]) for prefix in prefixes),
            *(Mount(prefix, routes=job_routes) for prefix in prefixes),
        ],
        middleware=[Middleware(CallRouter, calls=calls, job_name=settings.job_name)],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.metrics = call_metrics
    app.state.limiter = limiter
    return app


def webview_base_url(settings: WrapperSettings) -> str:
    """The public prefix of the webview pages, given to ``webview_app(base_url)``."""
    name = settings.job_name or "JOB_NAME"
    version = settings.job_version or "JOB_VERSION"
    return f"/pub/job/{name}/{version}/api/v1/webview"


async def home(request: Request) -> RedirectResponse:
    """``GET /``: a redirect to the home page, relative so that it works under any prefix."""
    settings: WrapperSettings = request.app.state.settings
    return RedirectResponse(relative_url(request.url.path, settings.home_page), status_code=307)


def relative_url(from_path: str, to_path: str) -> str:
    """A URL reference that leads from ``from_path`` to ``to_path`` (both under one prefix).

    ``from_path`` is the prefix's root: ``/`` or ``/pub/job/NAME/VERSION/``. Without the final
    slash a browser resolves relative to the parent, so the last segment is repeated.
    """
    target = to_path.lstrip("/") or "."
    if from_path.endswith("/"):
        return target
    return from_path.rsplit("/", 1)[-1] + "/" + target
