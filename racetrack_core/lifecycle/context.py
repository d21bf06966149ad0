"""What a route reaches through its request: the service, and who is calling."""

from __future__ import annotations

from starlette.requests import Request

from racetrack_core.auth import Caller, authenticate_with_plugins
from racetrack_core.errors import AuthenticationError
from racetrack_core.lifecycle.accounts import caller_for_token, request_token
from racetrack_core.lifecycle.responses import Unauthenticated
from racetrack_core.lifecycle.service import LifecycleService


def service_of(request: Request) -> LifecycleService:
    service: LifecycleService = request.app.state.service
    return service


def caller_of(request: Request) -> Caller:
    """Who is calling: a plugin's answer first (authenticate_request), else the token.

    Raise Unauthenticated (401) with the reason; the token itself is never echoed.
    """
    cached = request.scope.get("racetrack.caller")
    if isinstance(cached, Caller):
        return cached
    service = service_of(request)
    try:
        caller = authenticate_with_plugins(service.plugins, request)
    except AuthenticationError as exc:
        raise Unauthenticated(str(exc)) from None
    if caller is None:
        caller = caller_for_token(service.engine, request_token(request))
    request.scope["racetrack.caller"] = caller
    return caller
