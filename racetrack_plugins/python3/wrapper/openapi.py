"""``GET /openapi.json``: an OpenAPI 3.0 document built from the type hints of the job's methods."""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .auxiliary import RouteEndpoint
from .entrypoint import CallEndpoint, JobInterface
from .runtime import JobRuntime
from .settings import WrapperSettings

AUTH_HEADER = "X-Racetrack-Auth"

_SCALARS: dict[Any, dict[str, Any]] = {
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    bool: {"type": "boolean"},
    bytes: {"type": "string"},
}
_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "type": {"type": "string"}},
    "required": ["error", "type"],
}


def schema_of(annotation: Any) -> dict[str, Any]:
    """The JSON schema (OpenAPI 3.0 flavour) of a type hint; ``{}`` accepts anything."""
    if annotation in _SCALARS:
        return dict(_SCALARS[annotation])
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        options = [schema_of(option) for option in arguments if option is not type(None)]
        schema = options[0] if len(options) == 1 else {"anyOf": options}
        return {**schema, "nullable": True} if type(None) in arguments else schema
    if origin is typing.Literal:
        return {"enum": list(arguments)}
    base = origin or annotation
    if base in (list, tuple, set, frozenset) or _is_abc(base, "Sequence", "Set"):
        items = schema_of(arguments[0]) if arguments and base is not tuple else {}
        return {"type": "array", "items": items}
    if base is dict or _is_abc(base, "Mapping"):
        values = schema_of(arguments[1]) if len(arguments) == 2 else {}
        return {"type": "object", "additionalProperties": values or True}
    return {}


def _is_abc(base: Any, *names: str) -> bool:
    return getattr(base, "__module__", "") == "collections.abc" and base.__name__ in names


def request_schema(endpoint: CallEndpoint) -> dict[str, Any]:
    """The schema of the JSON object of keyword arguments that an endpoint takes."""
    properties: dict[str, Any] = {}
    required = []
    for parameter in endpoint.signature.parameters:
        schema = schema_of(parameter.annotation)
        if parameter.required:
            required.append(parameter.name)
        elif _is_json(parameter.default):
            schema["default"] = parameter.default
        properties[parameter.name] = schema
    schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if not endpoint.signature.accepts_any_keyword:
        schema["additionalProperties"] = False
    return schema


def _is_json(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | dict)


def _operation(endpoint: CallEndpoint) -> dict[str, Any]:
    description = endpoint.description
    body: dict[str, Any] = {"schema": request_schema(endpoint)}
    if endpoint.example is not None:
        body["example"] = endpoint.example
    return {
        "summary": description.splitlines()[0] if description else f"Call {endpoint.path}",
        "description": description,
        "operationId": "call_" + endpoint.path.strip("/").replace("/", "_"),
        "tags": ["job"],
        "requestBody": {"required": True, "content": {"application/json": body}},
        "responses": {
            "200": {
                "description": "The result",
                "content": {"application/json": {"schema": schema_of(_returns(endpoint))}},
            },
            "400": _error_response("Arguments that do not fit the parameters"),
            "500": _error_response("An exception raised by the job's code"),
        },
    }


def _route_operation(route: RouteEndpoint) -> dict[str, Any]:
    """An ``auxiliary_endpoints_v2`` route: its path and query parameters, and its body."""
    parameters = []
    body: dict[str, Any] = {}
    for parameter in route.signature.parameters:
        source = route.sources[parameter.name]
        if source == "auto":
            source = "path" if "{" + parameter.name + "}" in route.path else "query"
        if source == "body":
            body[parameter.name] = schema_of(parameter.annotation)
            continue
        parameters.append(
            {
                "name": parameter.name,
                "in": source,
                "required": source == "path" or parameter.required,
                "schema": schema_of(parameter.annotation),
            }
        )
    operation: dict[str, Any] = {
        "summary": route.options.get("summary") or f"Call auxiliary endpoint: {route.path}",
        "description": route.description,
        "operationId": "auxiliary_endpoint_" + route.path.strip("/").replace("/", "_"),
        "tags": list(route.options.get("tags") or ["job"]),
        "parameters": parameters,
        "responses": {
            "200": {"description": "The result", "content": {"application/json": {}}},
            "422": _error_response("Arguments that do not fit the parameters"),
            "500": _error_response("An exception raised by the job's code"),
        },
    }
    if body:
        schema = (
            next(iter(body.values())) if len(body) == 1 else {"type": "object", "properties": body}
        )
        content: dict[str, Any] = {"schema": schema}
        if route.example is not None:
            content["example"] = route.example
        operation["requestBody"] = {"content": {"application/json": content}}
    return operation


def _returns(endpoint: CallEndpoint) -> Any:
    returned = endpoint.signature.return_annotation
    return typing.Any if returned is inspect.Signature.empty else returned


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def _probe(summary: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "tags": ["runtime"],
            "responses": {"200": {"description": "OK", "content": {"application/json": {}}}},
        }
    }


def build_openapi(
    interface: JobInterface, settings: WrapperSettings, server_url: str, *, webview: bool = False
) -> dict[str, Any]:
    """The OpenAPI document of a job; ``server_url`` is the path that its routes are under."""
    paths: dict[str, Any] = {
        f"/api/v1{path}": {"post": _operation(endpoint)}
        for path, endpoint in interface.calls.items()
    }
    for route in interface.routes:
        paths.setdefault(f"/api/v1{route.path}", {})[route.http_method.lower()] = _route_operation(
            route
        )
    paths["/api/v1/parameters"] = _probe("The parameters of perform")
    if webview:
        paths["/api/v1/webview/"] = _probe("The job's own pages (webview_app)")
    for path in ("/live", "/ready", "/health"):
        paths[path] = _probe(f"Runtime probe {path}")
    return {
        "openapi": "3.0.3",
        "info": {
            "title": settings.job_name or "Racetrack job",
            "version": settings.job_version or "0.0.0",
        },
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "RacetrackAuth": {"type": "apiKey", "in": "header", "name": AUTH_HEADER}
            }
        },
        "security": [{"RacetrackAuth": []}],
    }


def path_prefix(request: Request) -> str:
    """The prefix that the request came under (``/pub/job/NAME/VERSION``), or ``""`` at the root."""
    return str(request.scope.get("root_path", "")).rstrip("/")


async def openapi(request: Request) -> JSONResponse:
    runtime: JobRuntime = request.app.state.runtime
    # The document's routes are under the prefix that this request came under, so that Swagger's
    # "Try it out" calls the same job version through the same gateway as the docs page.
    document = build_openapi(
        runtime.interface,
        request.app.state.settings,
        path_prefix(request) or "/",
        webview=runtime.webview is not None,
    )
    return JSONResponse(document)


routes = [Route("/openapi.json", openapi, methods=["GET"])]
