"""What a route reaches through its request: the service, the deployment pipeline, and who
is calling."""

from __future__ import annotations

from starlette.requests import Request

from racetrack_core.auth import Caller, authenticate_with_plugins
from racetrack_core.errors import AuthenticationError
from racetrack_core.lifecycle.accounts import caller_for_token, request_token
from racetrack_core.lifecycle.deployments import Pipeline
from racetrack_core.lifecycle.responses import Unauthenticated
from racetrack_core.lifecycle.service import LifecycleService

#: The caller that presents the services' internal token (Pub, asking on its own behalf).
INTERNAL = Caller(kind="internal", name="racetrack", is_staff=True)


def service_of(request: Request) -> LifecycleService:
    service: LifecycleService = request.app.state.service
    return service


def pipeline_of(request: Request) -> Pipeline:
    pipeline: Pipeline = request.app.state.pipeline
    return pipeline


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
        token = request_token(request)
        if token is not None and service.is_internal_token(token):
            caller = INTERNAL
        else:
            caller = caller_for_token(service.engine, token)
    request.scope["racetrack.caller"] = caller
    return caller
