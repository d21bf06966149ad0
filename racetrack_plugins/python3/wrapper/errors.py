"""Errors of the job wrapper, and how they are answered over HTTP.

    WrapperError                 base of the errors that the wrapper raises on purpose
    ├── EntrypointError          the job's file or class cannot be served (found at start-up)
    └── CallError                a call cannot be served; carries its HTTP status and error type
        ├── ArgumentError        400: the JSON body does not fit the method's parameters
        ├── NotFound             404: the job serves no such endpoint
        ├── PayloadTooLarge      413: the body is longer than JOB_MAX_BODY_BYTES
        ├── RouteArgumentError   422: a request does not fit an auxiliary_endpoints_v2 handler
        ├── TooManyCalls         429: max_concurrency calls running and the queue full
        └── NotReady             503: the job's ``__init__`` has not finished, or has failed

Every error answer is a JSON object ``{"error": "<message>", "type": "<kind>"}``.
"""

from __future__ import annotations

from starlette.responses import JSONResponse


class WrapperError(Exception):
    """Base class of the errors that the job wrapper raises on purpose."""


class EntrypointError(WrapperError):
    """The entrypoint file or class cannot be loaded or served; the message says how to fix it."""


class CallError(WrapperError):
    """A call that the wrapper refuses; ``status`` and ``kind`` go into the answer."""

    status = 400
    kind = "ValueError"

    def response(self) -> JSONResponse:
        return error_response(str(self), self.kind, self.status)


class ArgumentError(CallError):
    """The request body does not fit the parameters of the called method."""


class NotFound(CallError):
    status = 404
    kind = "NotFound"


class PayloadTooLarge(CallError):
    status = 413
    kind = "PayloadTooLarge"


class RouteArgumentError(CallError):
    """An ``auxiliary_endpoints_v2`` request does not fit its handler: 422, as FastAPI answered."""

    status = 422
    kind = "ValidationError"


class TooManyCalls(CallError):
    status = 429
    kind = "TooManyRequests"


class NotReady(CallError):
    status = 503
    kind = "NotReady"


def error_response(message: str, kind: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message, "type": kind}, status_code=status)
