"""``GET /api/v1/<path>``: the files that a job names in ``static_endpoints()``."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from .errors import CallError, error_response
from .runtime import JobRuntime


async def static_file(request: Request) -> Response:
    """A file named by ``static_endpoints()``, or one inside a directory that it names."""
    path = "/" + request.path_params["path"]
    runtime: JobRuntime = request.app.state.runtime
    try:
        static = runtime.require_ready().static
    except CallError as error:
        return error.response()
    for prefix, endpoint in static.items():
        if path == prefix and endpoint.target.is_file():
            return FileResponse(endpoint.target, media_type=endpoint.media_type)
        if path.startswith(prefix + "/") and endpoint.target.is_dir():
            found = _file_inside(endpoint.target, path[len(prefix) + 1 :])
            if found is not None:
                return FileResponse(found, media_type=endpoint.media_type)
    return error_response(f"no static file at GET /api/v1{path}", "NotFound", 404)


def _file_inside(directory: Path, relative: str) -> Path | None:
    # Resolved, then checked: a "..%2F" in the URL must not lead out of the directory.
    candidate = (directory / relative).resolve()
    if candidate.is_relative_to(directory) and candidate.is_file():
        return candidate
    return None


routes = [Route("/api/v1/{path:path}", static_file, methods=["GET"])]
