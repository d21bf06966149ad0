"""The parameters of a job's method: read from its signature, checked against a call's arguments.

Arguments are checked before the method runs, so that a caller's mistake (a missing, unexpected
or mistyped argument) is told apart from a ``TypeError`` raised inside the user's code.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ArgumentError, EntrypointError

_NO_DEFAULT: Any = inspect.Parameter.empty


@dataclass(frozen=True)
class Parameter:
    """One keyword argument that a job's method accepts."""

    name: str
    annotation: Any  # ``Any`` when the parameter has no type hint
    default: Any = _NO_DEFAULT

    @property
    def required(self) -> bool:
        return self.default is _NO_DEFAULT


@dataclass(frozen=True)
class Signature:
    """The keyword arguments of a job's method, and whether it takes ``**kwargs`` too."""

    method_name: str
    parameters: tuple[Parameter, ...]
    accepts_any_keyword: bool
    return_annotation: Any

    @functools.cached_property
    def names(self) -> dict[str, Parameter]:
        """The parameters by name, in the method's order (built once, used on every call)."""
        return {parameter.name: parameter for parameter in self.parameters}

    def check(self, arguments: Mapping[str, Any]) -> None:
        """Raise ``ArgumentError`` naming the first argument that the method cannot take."""
        known = self.names
        for name in arguments:
            if name not in known and not self.accepts_any_keyword:
                accepted = ", ".join(known) or "no arguments"
                raise ArgumentError(
                    f"unexpected argument '{name}' for {self.method_name}; it accepts: {accepted}"
                )
        for parameter in self.parameters:
            if parameter.name in arguments:
                problem = type_problem(arguments[parameter.name], parameter.annotation)
                if problem:
                    raise ArgumentError(
                        f"argument '{parameter.name}' of {self.method_name} {problem}"
                    )
            elif parameter.required:
                raise ArgumentError(
                    f"missing required argument '{parameter.name}' for {self.method_name}"
                )


def read_signature(
    method: Callable[..., Any], method_name: str, *, skip_self: bool = False
) -> Signature:
    """Read the keyword parameters of a bound method, or of a function defined in a class
    (``skip_self``: its first parameter is left out)."""
    try:
        hints = typing.get_type_hints(method)
    except Exception:  # an unresolvable forward reference: fall back to the raw annotations
        hints = dict(getattr(method, "__annotations__", {}))
    parameters = []
    accepts_any_keyword = False
    for parameter in list(inspect.signature(method).parameters.values())[int(skip_self) :]:
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            accepts_any_keyword = True
        elif parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            raise EntrypointError(
                f"{method_name} takes *{parameter.name}, which a JSON object cannot fill; "
                "use keyword parameters"
            )
        elif parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise EntrypointError(
                f"{method_name} has the positional-only parameter '{parameter.name}', which "
                "a JSON object cannot fill; remove the '/' from its signature"
            )
        else:
            annotation = hints.get(parameter.name, Any)
            parameters.append(Parameter(parameter.name, annotation, parameter.default))
    return Signature(method_name, tuple(parameters), accepts_any_keyword, hints.get("return", Any))


def type_name(annotation: Any) -> str:
    """A short, readable name of a type hint: ``int``, ``list[str]``, ``str | None``."""
    if annotation is Any:
        return "Any"
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


_JSON_TYPES: dict[type, tuple[str, tuple[type, ...]]] = {
    bool: ("a boolean", (bool,)),
    int: ("an integer", (int,)),
    float: ("a number", (int, float)),
    str: ("a string", (str,)),
    list: ("an array", (list,)),
    tuple: ("an array", (list,)),
    set: ("an array", (list,)),
    frozenset: ("an array", (list,)),
    dict: ("an object", (dict,)),
}


def type_problem(value: Any, annotation: Any) -> str | None:
    """Say how a JSON value does not fit a type hint, or ``None`` if it fits.

    Only the types that JSON can express are checked; any other hint (a user's class, a
    ``numpy`` array) accepts every value, as the method may convert it itself.
    """
    if annotation is Any or annotation is inspect.Parameter.empty:
        return None
    if annotation is None or annotation is type(None):
        return None if value is None else f"must be null, got {_describe(value)}"
    if annotation.__class__ is type:  # a plain class such as int: the common case, fast
        entry = _JSON_TYPES.get(annotation)
        if entry is None:
            return None
        wanted, accepted = entry
        if not isinstance(value, accepted) or (isinstance(value, bool) and annotation is not bool):
            return f"must be {wanted}, got {_describe(value)}"
        return None
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        fits = any(type_problem(value, option) is None for option in arguments)
        return None if fits else f"must be {type_name(annotation)}, got {_describe(value)}"
    if origin is typing.Literal:
        return None if value in arguments else f"must be one of {list(arguments)!r}"
    base = origin if isinstance(origin, type) else annotation
    if not isinstance(base, type) or base not in _JSON_TYPES:
        return None
    wanted, accepted = _JSON_TYPES[base]
    if not isinstance(value, accepted) or (isinstance(value, bool) and base is not bool):
        return f"must be {wanted}, got {_describe(value)}"
    if arguments and isinstance(value, list) and base is not tuple:
        for index, item in enumerate(value):
            problem = type_problem(item, arguments[0])
            if problem:
                return f"item {index} {problem}"
    if len(arguments) == 2 and isinstance(value, dict):
        for key, item in value.items():
            problem = type_problem(item, arguments[1])
            if problem:
                return f"key '{key}' {problem}"
    return None


def _describe(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string"}
    names |= {list: "array", dict: "object"}
    if value is None:
        return "null"
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return f"{names.get(type(value), type(value).__name__)} {shown}"
