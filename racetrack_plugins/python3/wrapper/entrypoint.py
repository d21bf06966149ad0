"""The user's entrypoint: its class, found in a file, and what an instance of it serves.

The class is loaded at start-up, so that a wrong path or class name stops the job at once with
a clear message. Its instance is made later (``__init__`` may take minutes); ``describe_instance``
then reads its optional methods: ``auxiliary_endpoints``, ``auxiliary_endpoints_v2``,
``static_endpoints``, ``docs_input_example`` and ``docs_input_examples`` (``webview_app`` and
``metrics`` are read by ``webview`` and ``metrics``).

``JobEntrypoint`` is the original wrapper's optional base class, for job code that imports it
(``from racetrack_job_wrapper.entrypoint import JobEntrypoint``); a job needs no base class.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import logging
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .auxiliary import RouteEndpoint, read_routes
from .errors import EntrypointError
from .signature import Signature, read_signature

MODULE_NAME = "racetrack_job_entrypoint"
PERFORM = "/perform"
RESERVED_GET_PATHS = ("/parameters",)

logger = logging.getLogger("racetrack.job")

#: A WSGI application: ``app(environ, start_response)`` returning the body's chunks.
WsgiApplication = Callable[[Mapping[str, object], Callable[..., Any]], Iterable[bytes]]


class JobEntrypoint(ABC):
    """A base class for a job's entrypoint, as in the original wrapper (optional here)."""

    @abstractmethod
    def perform(self, **kwargs: Any) -> Any:
        """The job's main action: ``POST /api/v1/perform``."""

    def webview_app(self, base_url: str) -> Any:
        """A WSGI or ASGI app served under ``/api/v1/webview/``; ``None`` for none."""
        return None

    def docs_input_examples(self) -> dict[str, dict[str, Any]]:
        """An example input per endpoint path, shown in the docs."""
        return {}

    def docs_input_example(self) -> dict[str, Any]:
        """An example input of ``perform``, shown in the docs."""
        return {}

    def auxiliary_endpoints(self) -> dict[str, Callable[..., Any]]:
        """More endpoints than ``/perform``: ``{"/path": self.method}``."""
        return {}

    def static_endpoints(self) -> dict[str, tuple[str, str] | str]:
        """Files served by ``GET /api/v1/<path>``: ``{"/path": "file" | ("file", "mime")}``."""
        return {}

    def metrics(self) -> list[dict[str, Any]]:
        """Custom Prometheus gauges: ``[{"name", "value", "description"?, "labels"?}]``."""
        return []


@dataclass(frozen=True)
class CallEndpoint:
    """A method served as ``POST /api/v1{path}``."""

    path: str
    method: Callable[..., Any]
    signature: Signature
    example: Any = None

    @functools.cached_property
    def is_async(self) -> bool:
        """Whether the method is awaited on the event loop rather than run in a worker thread.

        Read once per endpoint (``inspect`` is slow next to a small call); the endpoints are
        made at start-up and when ``__init__`` has finished.
        """
        return inspect.iscoroutinefunction(self.method)

    @property
    def description(self) -> str:
        return inspect.getdoc(self.method) or ""


@dataclass(frozen=True)
class StaticEndpoint:
    """A file, or a directory of files, served as ``GET /api/v1{path}``."""

    path: str
    target: Path
    media_type: str | None = None


@dataclass(frozen=True)
class JobInterface:
    """Everything that a job serves besides the runtime contract."""

    calls: dict[str, CallEndpoint]
    static: dict[str, StaticEndpoint] = field(default_factory=dict)
    #: ``auxiliary_endpoints_v2``, tried after ``calls`` (POST) and before ``static`` (GET).
    routes: list[RouteEndpoint] = field(default_factory=list)

    @property
    def perform(self) -> CallEndpoint:
        return self.calls[PERFORM]


def load_entrypoint_class(
    entrypoint_path: str | Path, entrypoint_class: str | None, job_dir: Path
) -> type:
    """Import the entrypoint file and return the class to serve.

    Without ``entrypoint_class``, the file must define exactly one class with a ``perform`` method.
    """
    path = job_dir / entrypoint_path
    if not path.is_file():
        raise EntrypointError(f"entrypoint file '{entrypoint_path}' not found in '{job_dir}'")
    for directory in (str(path.parent.resolve()), str(job_dir.resolve())):
        if directory not in sys.path:
            sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    if spec is None or spec.loader is None:
        raise EntrypointError(f"entrypoint file '{path}' cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise EntrypointError(
            f"importing '{path}' failed: {type(error).__name__}: {error}"
        ) from error

    if entrypoint_class:
        found = getattr(module, entrypoint_class, None)
        if not inspect.isclass(found):
            classes = ", ".join(_classes_of(module)) or "none"
            raise EntrypointError(
                f"class '{entrypoint_class}' not found in '{entrypoint_path}'; "
                f"classes there: {classes}"
            )
        if not callable(getattr(found, "perform", None)):
            raise EntrypointError(
                f"class '{entrypoint_class}' in '{entrypoint_path}' has no perform method"
            )
        return found
    candidates = [
        cls for name, cls in _classes_of(module).items() if callable(getattr(cls, "perform", None))
    ]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise EntrypointError(
            f"'{entrypoint_path}' has no class with a perform method; define one, like "
            "'class JobEntrypoint:' with 'def perform(self, ...)'"
        )
    names = ", ".join(cls.__name__ for cls in candidates)
    raise EntrypointError(
        f"'{entrypoint_path}' has several classes with a perform method ({names}); "
        "choose one with jobtype_extra.entrypoint_class"
    )


def _classes_of(module: Any) -> dict[str, type]:
    return {
        name: value
        for name, value in vars(module).items()
        if inspect.isclass(value) and value.__module__ == module.__name__
    }


def describe_class(cls: type) -> JobInterface:
    """What can be known before ``__init__`` has run: the ``perform`` parameters."""
    perform = cls.perform  # type: ignore[attr-defined]
    is_static = isinstance(inspect.getattr_static(cls, "perform"), staticmethod)
    signature = read_signature(perform, "perform", skip_self=not is_static)
    return JobInterface({PERFORM: CallEndpoint(PERFORM, perform, signature)})


def describe_instance(instance: object, job_dir: Path) -> JobInterface:
    """Read what an instance serves; raise ``EntrypointError`` for anything it cannot serve."""
    methods: dict[str, Callable[..., Any]] = {PERFORM: instance.perform}  # type: ignore[attr-defined]
    for path, method in _optional_mapping(instance, "auxiliary_endpoints").items():
        _check_endpoint_path(path, "auxiliary_endpoints")
        if path in methods:
            raise EntrypointError(
                f"auxiliary_endpoints() names '{path}', which is taken by perform"
            )
        if not callable(method):
            raise EntrypointError(f"auxiliary_endpoints()['{path}'] is {method!r}, not a method")
        methods[path] = method

    examples: dict[str, Any] = {}
    if callable(getattr(instance, "docs_input_example", None)):
        examples[PERFORM] = instance.docs_input_example()  # type: ignore[attr-defined]
    route_paths = _route_paths(instance)
    for path, example in _optional_mapping(instance, "docs_input_examples").items():
        if path not in methods and path not in route_paths:
            logger.warning("docs_input_examples() names '%s', which is no endpoint; ignored", path)
        examples[path] = example

    calls = {
        path: CallEndpoint(
            path, method, read_signature(method, path.lstrip("/")), examples.get(path)
        )
        for path, method in methods.items()
    }
    static = {
        path: _static_endpoint(path, target, job_dir)
        for path, target in _optional_mapping(instance, "static_endpoints").items()
    }
    return JobInterface(calls, static, read_routes(instance, examples))


def _route_paths(instance: object) -> set[str]:
    method = getattr(instance, "auxiliary_endpoints_v2", None)
    configs = method() if callable(method) else []
    return {"/" + str(getattr(c, "path", "")).lstrip("/") for c in configs or []}


def _optional_mapping(instance: object, method_name: str) -> dict[str, Any]:
    method = getattr(instance, method_name, None)
    if not callable(method):
        return {}
    mapping = method()
    if not isinstance(mapping, dict) or not all(isinstance(key, str) for key in mapping):
        raise EntrypointError(f"{method_name}() must return a dict with str keys, got {mapping!r}")
    return mapping


def _check_endpoint_path(path: str, method_name: str) -> None:
    if not path.startswith("/") or path == "/" or ".." in path or any(c.isspace() for c in path):
        raise EntrypointError(
            f"{method_name}() names the path '{path}'; "
            "use a path like '/name' without '..' or spaces"
        )


def _static_endpoint(path: str, target: Any, job_dir: Path) -> StaticEndpoint:
    _check_endpoint_path(path, "static_endpoints")
    if path in RESERVED_GET_PATHS:
        raise EntrypointError(f"static_endpoints() names '{path}', which the wrapper serves itself")
    media_type = None
    if isinstance(target, tuple | list) and len(target) == 2:
        target, media_type = target
    if not isinstance(target, str) or not isinstance(media_type, str | None):
        raise EntrypointError(
            f"static_endpoints()['{path}'] must be 'file', ('file', 'mime/type') or 'dir'"
        )
    relative = PurePosixPath(target)
    if relative.is_absolute() or ".." in relative.parts:
        raise EntrypointError(
            f"static_endpoints()['{path}'] is '{target}', which leaves the job directory; "
            "use a path relative to it"
        )
    root = job_dir.resolve()
    resolved = (root / relative).resolve()
    if not resolved.is_relative_to(root):
        raise EntrypointError(
            f"static_endpoints()['{path}'] is '{target}', which leaves the job directory"
        )
    if not resolved.exists():
        raise EntrypointError(f"static_endpoints()['{path}'] is '{target}', which does not exist")
    return StaticEndpoint(path, resolved, media_type)
