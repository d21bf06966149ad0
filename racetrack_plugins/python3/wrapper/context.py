"""The request being served, for job code: ``self.request_context`` and the caller's name.

As the original wrapper does, the job's instance gets two context variables once its
``__init__`` has finished: ``request_context`` (the current ``starlette.requests.Request``, so
``self.request_context.get().headers`` reads the call's headers) and ``request_extra`` (a dict
that lives for one call). They are bound for every call, auxiliary endpoint and webview
request; ``def`` methods run in a copy of the context (``workers``), so they see them too.

The caller's name (``X-Caller-Name``, or the header in ``CALLER_NAME_HEADER``) is kept as well,
for the log lines of ``LOG_CALLER_NAME`` (``logs``).
"""

from __future__ import annotations

import logging
import os
from contextvars import ContextVar, Token
from typing import Any

from starlette.requests import Request
from starlette.types import Scope

logger = logging.getLogger("racetrack.job")

DEFAULT_CALLER_HEADER = "X-Caller-Name"
_REQUEST_KEY = "racetrack.request"
_EXTRA_KEY = "racetrack.request_extra"

#: The ASGI scope of the request being served: one context variable set per call, the rest is
#: made from it only when asked for (a call that never reads them pays nothing more).
_scope: ContextVar[Scope | None] = ContextVar("racetrack_request_scope", default=None)
_caller_key = (os.environ.get("CALLER_NAME_HEADER") or DEFAULT_CALLER_HEADER).lower().encode()
_NO_DEFAULT: Any = object()


def current_caller_name() -> str | None:
    """The name of the caller of the call being served, as Pub put it in the request."""
    scope = _scope.get()
    if scope is None:
        return None
    for name, raw in scope["headers"]:
        if name == _caller_key:
            return str(raw.decode("latin-1"))
    return None


class _RequestVar:
    """``self.request_context``: ``.get()`` is the current ``Request``, as a ``ContextVar``'s."""

    def get(self, default: Any = _NO_DEFAULT) -> Request:
        scope = _scope.get()
        if scope is None:
            if default is _NO_DEFAULT:
                raise LookupError("request_context: no request is being served")
            return default  # type: ignore[no-any-return]
        request: Request | None = scope.get(_REQUEST_KEY)
        if request is None:
            request = scope[_REQUEST_KEY] = Request(scope)
        return request


class _ExtraVar:
    """``self.request_extra``: ``.get()`` is a dict that lives for the current request."""

    def get(self, default: Any = _NO_DEFAULT) -> dict[str, Any]:
        scope = _scope.get()
        if scope is None:
            if default is _NO_DEFAULT:
                raise LookupError("request_extra: no request is being served")
            return default  # type: ignore[no-any-return]
        extra: dict[str, Any] = scope.setdefault(_EXTRA_KEY, {})
        return extra


class RequestContext:
    """What a job instance is given (``request_context``, ``request_extra``) and its binding."""

    def __init__(self) -> None:
        self.request = _RequestVar()
        self.extra = _ExtraVar()

    def install(self, instance: object) -> None:
        """Set ``instance.request_context`` and ``instance.request_extra``."""
        try:
            instance.request_context = self.request  # type: ignore[attr-defined]
            instance.request_extra = self.extra  # type: ignore[attr-defined]
        except AttributeError:  # a class with __slots__
            logger.warning("the job's instance takes no attributes: no request_context for it")

    def bind(self, scope: Scope) -> Token[Scope | None]:
        """Make ``scope`` the current request; undo with ``reset``."""
        return _scope.set(scope)

    def reset(self, token: Token[Scope | None]) -> None:
        _scope.reset(token)
