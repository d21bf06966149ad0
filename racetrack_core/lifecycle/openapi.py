"""The Lifecycle API's OpenAPI document, built from the routes themselves.

Each ``/api/`` route becomes an operation: its summary and description come from the handler's
docstring, its path parameters from the route's path (``/job/{name}/{version}``), and its
answers from what every route may answer: a JSON value with 200, or an error object
``{"error", "type"}`` with one of the statuses in :data:`ERROR_STATUSES` (the rules in
``docs/lifecycle.md``). A handler may declare the JSON body it takes and the answer it gives
with :func:`schemas`; a body declared there is also what ``read_json_body`` validates, so one
definition both documents and checks it.

``tests/security/test_fuzz_lifecycle_api.py`` runs schemathesis against this document.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.routing import BaseRoute, Route

import racetrack_core
from racetrack_core.lifecycle import json_schemas
from racetrack_core.wire import AUTH_HEADER

#: The statuses of an error answer, and what each means.
ERROR_STATUSES = {
    "400": "bad input: the error names the field or parameter and how to fix it",
    "401": "no valid token or session",
    "403": "no permission for this action",
    "404": "no such resource",
    "405": "the path exists for other methods",
    "409": "already exists, or in use",
    "413": "the body is larger than the route's limit",
    "429": "too many attempts (logins)",
    "503": "a dependency (the database, a target) is unavailable for now",
}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "type": {"type": "string"}},
}

PUBLIC_PATHS = frozenset(
    {"/api/v1/info", "/api/v1/users/login", "/api/v1/users/logout", "/api/v1/users/register"}
)

_PARAMETER = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)(?::[A-Za-z_]+)?}")
Handler = TypeVar("Handler", bound=Callable[..., Any])
#: A JSON schema as a mapping, or a type (a TypedDict, a dataclass, ``list[...]``, ``X | None``)
#: from which :mod:`racetrack_core.lifecycle.json_schemas` derives one.
Declared = Mapping[str, Any] | Any


@dataclass(frozen=True)
class Declaration:
    """What a handler declared with :func:`schemas`."""

    answer: Declared
    body: Declared = None
    query: type | None = None
    status: int = 200
    body_media: str = "application/json"
    answer_media: str = "application/json"
    optional_body: bool = False
    path: type | None = None


def schemas(
    *,
    answer: Declared,
    body: Declared = None,
    query: type | None = None,
    status: int = 200,
    body_media: str = "application/json",
    answer_media: str = "application/json",
    optional_body: bool = False,
    path: type | None = None,
) -> Callable[[Handler], Handler]:
    """Declare the ``body`` a handler takes, the ``answer`` it gives with ``status``, and the
    ``query`` parameters it reads (a TypedDict whose keys are the parameters, all optional).

    ``body`` and ``answer`` are types (TypedDicts, dataclasses) or JSON schemas; a JSON body
    declared here is what ``read_json_object`` checks; ``answer=None`` is a JSON ``null``.
    ``optional_body``: the route takes a request without a body too. ``path``: a TypedDict
    narrowing some of the route's path parameters (an enum, say); the others are any
    non-empty string.
    """
    declaration = Declaration(
        answer, body, query, status, body_media, answer_media, optional_body, path
    )

    def mark(handler: Handler) -> Handler:
        handler.__racetrack_schemas__ = declaration  # type: ignore[attr-defined]
        return handler

    return mark


def declaration_of(endpoint: object) -> Declaration | None:
    """What ``endpoint`` declared with :func:`schemas`, if it did."""
    declared = getattr(endpoint, "__racetrack_schemas__", None)
    return declared if isinstance(declared, Declaration) else None


def declared_body(endpoint: object) -> Mapping[str, Any] | None:
    """The JSON schema of the body ``endpoint`` declared, self-contained, for validating."""
    declaration = declaration_of(endpoint)
    if declaration is None or declaration.body is None:
        return None
    if declaration.body_media != "application/json":
        return None
    return json_schemas.standalone(declaration.body)


def document(routes: Iterable[BaseRoute], server_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every ``/api/`` route in ``routes``."""
    paths: dict[str, dict[str, Any]] = {}
    components = json_schemas.Components()
    for route in routes:
        if isinstance(route, Route) and route.path.startswith("/api/"):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                path = _PARAMETER.sub(r"{\1}", route.path)
                paths.setdefault(path, {})[method.lower()] = _operation(route, method, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Racetrack Lifecycle API", "version": racetrack_core.__version__},
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "RacetrackAuth": {"type": "apiKey", "in": "header", "name": AUTH_HEADER}
            },
            "schemas": {"Error": ERROR_SCHEMA, **components.schemas},
        },
    }


def _operation(route: Route, method: str, components: json_schemas.Components) -> dict[str, Any]:
    doc = (route.endpoint.__doc__ or route.name).strip()
    summary, _, description = doc.partition("\n")
    declared = declaration_of(route.endpoint)
    error = {"$ref": "#/components/schemas/Error"}
    responses: dict[str, Any] = {}
    if declared is None:
        responses["200"] = {"description": "JSON answer", "content": {"application/json": {}}}
    else:
        answer = components.referenced(declared.answer, closed=True)
        responses[str(declared.status)] = {
            "description": "the answer",
            "content": {declared.answer_media: {"schema": answer}},
        }
    for status, meaning in ERROR_STATUSES.items():
        responses[status] = {
            "description": meaning,
            "content": {"application/json": {"schema": error}},
        }
    operation: dict[str, Any] = {
        "summary": summary.strip(),
        "description": " ".join(description.split()),
        "operationId": f"{method.lower()}_{route.name}",
        "responses": responses,
    }
    narrowed = {}
    if declared is not None and declared.path is not None:
        narrowed = components.query_parameters(declared.path)
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": narrowed.get(name, {"type": "string", "minLength": 1}),
        }
        for name in _PARAMETER.findall(route.path)
    ]
    if declared is not None and declared.query is not None:
        parameters += [
            {"name": name, "in": "query", "required": False, "schema": schema}
            for name, schema in components.query_parameters(declared.query).items()
        ]
    if parameters:
        operation["parameters"] = parameters
    if declared is not None and declared.body is not None and method in ("POST", "PUT", "PATCH"):
        operation["requestBody"] = {
            "required": not declared.optional_body,
            "content": {declared.body_media: {"schema": components.referenced(declared.body)}},
        }
    if route.path not in PUBLIC_PATHS:
        operation["security"] = [{"RacetrackAuth": []}]
    return operation
