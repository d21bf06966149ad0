"""``auxiliary_endpoints_v2``: endpoints with a verb, path parameters, query and body.

The original wrapper handed each ``EndpointConfig`` to FastAPI. Here the wrapper binds the
arguments itself, from the same places FastAPI takes them:

- a parameter named in the path (``/multiply/{factor}``), or annotated ``Path(...)``: the path;
- a parameter annotated ``Query(...)``, and on ``GET`` any other one: the query string;
- a parameter annotated ``Body(...)``: the JSON body (the whole body when it is the only one);
- on ``POST``, any other parameter: the key of that name in a JSON object body, else the query.

Values from the path and the query are converted to ``int``, ``float`` or ``bool`` when the
hint asks for one. The ``Annotated`` markers are recognised by their class names, so FastAPI
itself is needed only if the job's code imports it.
"""

from __future__ import annotations

import functools
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .endpoint_config import EndpointConfig
from .errors import ArgumentError, EntrypointError, RouteArgumentError
from .signature import Signature, read_signature

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::path)?\}")
_SOURCES = {"Path": "path", "Query": "query", "Body": "body"}
#: The body of a request that sent none.
MISSING: Any = inspect.Parameter.empty


@dataclass(frozen=True)
class RouteEndpoint:
    """One endpoint of ``auxiliary_endpoints_v2``: ``http_method`` at ``/api/v1{path}``."""

    path: str
    http_method: str
    method: Callable[..., Any]
    signature: Signature
    pattern: re.Pattern[str]
    sources: dict[str, str]  # parameter -> "path" | "query" | "body" | "auto"
    options: dict[str, Any]
    example: Any = None

    @functools.cached_property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.method)

    @property
    def description(self) -> str:
        return str(self.options.get("description") or inspect.getdoc(self.method) or "")

    def match(self, http_method: str, path: str) -> dict[str, str] | None:
        """The path parameters if this endpoint serves ``http_method path``, else ``None``."""
        if http_method != self.http_method:
            return None
        found = self.pattern.fullmatch(path)
        return None if found is None else found.groupdict()

    def bind(
        self, path_params: Mapping[str, str], query: Mapping[str, str], body: Any
    ) -> dict[str, Any]:
        """The keyword arguments of a request, checked against the handler's signature.

        A request that does not fit is answered 422, as FastAPI answered it in the original.
        """
        try:
            return self._bind(path_params, query, body)
        except ArgumentError as error:
            raise RouteArgumentError(str(error)) from None

    def _bind(
        self, path_params: Mapping[str, str], query: Mapping[str, str], body: Any
    ) -> dict[str, Any]:
        body_params = [name for name, source in self.sources.items() if source == "body"]
        arguments: dict[str, Any] = {}
        for parameter in self.signature.parameters:
            name = parameter.name
            source = self.sources[name]
            if source == "auto":
                source = _auto_source(name, self.http_method, body, path_params)
            if source == "path" and name in path_params:
                arguments[name] = _convert(path_params[name], parameter.annotation, name)
            elif source == "query" and name in query:
                arguments[name] = _convert(query[name], parameter.annotation, name)
            elif source == "body" and body is not MISSING:
                if len(body_params) == 1 and self.sources[name] == "body":
                    arguments[name] = body
                elif isinstance(body, dict) and name in body:
                    arguments[name] = body[name]
        if self.signature.accepts_any_keyword and isinstance(body, dict):
            for key, value in body.items():
                arguments.setdefault(key, value)
        self.signature.check(arguments)
        return arguments


def _auto_source(name: str, http_method: str, body: Any, path_params: Mapping[str, str]) -> str:
    if name in path_params:
        return "path"
    if http_method == "POST" and isinstance(body, dict) and name in body:
        return "body"
    return "query"


def _convert(raw: str, annotation: Any, name: str) -> Any:
    kind = _base_type(annotation)
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered not in {"true", "false", "1", "0", "yes", "no", "on", "off"}:
                raise ValueError(raw)
            return lowered in {"true", "1", "yes", "on"}
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
    except ValueError:
        raise ArgumentError(
            f"parameter '{name}' is {raw!r}, which is not a valid {kind.__name__}"
        ) from None
    return raw


def _base_type(annotation: Any) -> Any:
    """``int`` for ``int``, ``Optional[int]`` and ``int | None``; else the annotation."""
    arguments = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return arguments[0] if len(arguments) == 1 else annotation
    return annotation


def read_routes(instance: object, examples: Mapping[str, Any]) -> list[RouteEndpoint]:
    """The endpoints that ``instance.auxiliary_endpoints_v2()`` declares, checked."""
    method = getattr(instance, "auxiliary_endpoints_v2", None)
    if not callable(method):
        return []
    configs = method()
    if not isinstance(configs, list | tuple):
        raise EntrypointError(
            f"auxiliary_endpoints_v2() must return a list of EndpointConfig, got {configs!r}"
        )
    routes = []
    for index, config in enumerate(configs):
        routes.append(_route(config, index, examples))
    return routes


def _route(config: Any, index: int, examples: Mapping[str, Any]) -> RouteEndpoint:
    where = f"auxiliary_endpoints_v2()[{index}]"
    if not isinstance(config, EndpointConfig) and type(config).__name__ != "EndpointConfig":
        raise EntrypointError(f"{where} is {config!r}, not an EndpointConfig")
    path = "/" + str(config.path).lstrip("/")
    verb = str(getattr(config.method, "value", config.method)).upper()
    if verb not in {"GET", "POST"}:
        raise EntrypointError(f"{where} has the method {verb} at '{path}'; use GET or POST")
    if not callable(config.handler):
        raise EntrypointError(f"{where} has the handler {config.handler!r}, which is not callable")
    if ".." in path or any(c.isspace() for c in path):
        raise EntrypointError(f"{where} has the path '{path}'; use one without '..' or spaces")
    signature = read_signature(config.handler, path.lstrip("/"))
    placeholders = set(_PLACEHOLDER.findall(path))
    sources = {
        parameter.name: _declared_source(config.handler, parameter.name, placeholders)
        for parameter in signature.parameters
    }
    regex = ""
    last = 0
    for found in _PLACEHOLDER.finditer(path):
        regex += re.escape(path[last : found.start()])
        wide = found.group(0).endswith(":path}")
        regex += f"(?P<{found.group(1)}>{'.+' if wide else '[^/]+'})"
        last = found.end()
    regex += re.escape(path[last:])
    options = dict(config.other_options or {})
    return RouteEndpoint(
        path,
        verb,
        config.handler,
        signature,
        re.compile(regex),
        sources,
        options,
        examples.get(path),
    )


def _declared_source(handler: Callable[..., Any], name: str, placeholders: set[str]) -> str:
    try:
        hints = typing.get_type_hints(handler, include_extras=True)
    except Exception:  # an unresolvable forward reference: no markers to read
        hints = {}
    for marker in getattr(hints.get(name), "__metadata__", ()):
        source = _SOURCES.get(type(marker).__name__)
        if source is not None:
            return source
    return "path" if name in placeholders else "auto"


def find_route(
    routes: list[RouteEndpoint], http_method: str, path: str
) -> tuple[RouteEndpoint, dict[str, str]] | None:
    """The first route that serves ``http_method path``, with its path parameters."""
    for route in routes:
        params = route.match(http_method, path)
        if params is not None:
            return route, params
    return None
