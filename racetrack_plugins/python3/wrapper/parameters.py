"""``GET /api/v1/parameters``: the parameters of ``perform``, with their types and defaults."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .runtime import JobRuntime
from .signature import type_name


async def parameters(request: Request) -> JSONResponse:
    """Answered from the class before ``__init__`` has finished, too: the signature is known."""
    runtime: JobRuntime = request.app.state.runtime
    described = []
    for parameter in runtime.interface.perform.signature.parameters:
        entry: dict[str, Any] = {"name": parameter.name}
        if not parameter.required:
            entry["default_value"] = _jsonable(parameter.default)
        entry["type"] = type_name(parameter.annotation)
        described.append(entry)
    return JSONResponse(described)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)
    return value


routes = [Route("/api/v1/parameters", parameters, methods=["GET"])]
