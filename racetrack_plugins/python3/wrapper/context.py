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

_caller_name: ContextVar[str | None] = ContextVar("racetrack_caller_name", default=None)
_caller_key = (os.environ.get("CALLER_NAME_HEADER") or DEFAULT_CALLER_HEADER).lower().encode()


def current_caller_name() -> str | None:
    """The name of the caller of the call being served, as Pub put it in the request."""
    return _caller_name.get()


Bound = tuple[Token[Request], Token[dict[str, Any]], Token[str | None]]


class RequestContext:
    """The context variables that one job instance is given (``request_context``, ...)."""

    def __init__(self) -> None:
        self.request: ContextVar[Request] = ContextVar("request_context")
        self.extra: ContextVar[dict[str, Any]] = ContextVar("request_extra")

    def install(self, instance: object) -> None:
        """Set ``instance.request_context`` and ``instance.request_extra``."""
        try:
            instance.request_context = self.request  # type: ignore[attr-defined]
            instance.request_extra = self.extra  # type: ignore[attr-defined]
        except AttributeError:  # a class with __slots__
            logger.warning("the job's instance takes no attributes: no request_context for it")

    def bind(self, scope: Scope) -> Bound:
        """Make ``scope`` the current request; undo with ``reset``."""
        caller = None
        for name, raw in scope["headers"]:
            if name == _caller_key:
                caller = raw.decode("latin-1")
                break
        return (self.request.set(Request(scope)), self.extra.set({}), _caller_name.set(caller))

    def reset(self, bound: Bound) -> None:
        request, extra, caller = bound
        _caller_name.reset(caller)
        self.extra.reset(extra)
        self.request.reset(request)
