"""The app factory of the job wrapper: the user's class served as a Starlette app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Mount, Route

from . import calls, health, metrics, openapi, swagger
from .entrypoint import load_entrypoint_class
from .runtime import JobRuntime
from .settings import WrapperSettings


def create_app(
    entrypoint_path: str | Path,
    entrypoint_class: str | None,
    job_dir: Path,
    settings: WrapperSettings,
) -> Starlette:
    """Load the entrypoint class now; make its instance in the background once the app starts.

    Every route is served at the root and under ``/pub/job/{JOB_NAME}/{any version}``.
    """
    runtime = JobRuntime(load_entrypoint_class(entrypoint_path, entrypoint_class, job_dir), job_dir)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime.start()
        yield

    job_routes: list[BaseRoute] = [
        Route("/", home, methods=["GET"]),
        *health.routes,
        *metrics.routes,
        *openapi.routes,
        *swagger.routes(),
        *calls.routes,
    ]
    prefix = "/pub/job/" + (settings.job_name or "{job_name}") + "/{version}"
    app = Starlette(
        routes=[
            *job_routes,
            Route(prefix, home, methods=["GET"]),
            Mount(prefix, routes=job_routes),
        ],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.metrics = metrics.CallMetrics()
    app.state.limiter = calls.CallLimiter(settings.max_concurrency)
    return app


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
