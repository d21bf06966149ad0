"""Account pages: log in and out, register, wait for activation, and the Profile."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from racetrack_core.dashboard.api import LifecycleError
from racetrack_core.dashboard.pages import (
    Viewer,
    checked_form,
    dashboard_of,
    end_session,
    field,
    page,
    redirect,
    render,
    safe_next,
    say_now,
    set_session,
    url,
    viewer_of,
)
from racetrack_core.security import token_hint
from racetrack_core.wire import MIN_PASSWORD_LENGTH

#: The rules Lifecycle applies to a new password, shown before the form is sent.
PASSWORD_RULES = (
    f"at least {MIN_PASSWORD_LENGTH} characters",
    "not only digits",
    "not one of the most common passwords",
    "not your e-mail address or the part before the @",
)


def peer(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def home(request: Request) -> Response:
    viewer = await viewer_of(request)
    return RedirectResponse(url("jobs" if viewer else "login"), status_code=303)


async def login_page(request: Request) -> Response:
    if await viewer_of(request) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return render(
        request, "login.html", None, username="", next=request.query_params.get("next", "")
    )


async def login(request: Request) -> Response:
    form = await checked_form(request)
    username, password = field(form, "username"), str(form.get("password") or "")
    target = safe_next(field(form, "next"))
    try:
        answer = await dashboard_of(request).api.call(
            "POST",
            "/users/login",
            None,
            json={"username": username, "password": password},
            client_address=peer(request),
        )
    except LifecycleError as exc:
        if exc.kind == "AwaitingActivation":
            return redirect(request, url("waiting") + "?username=" + quote(username, safe="@"))
        if exc.status not in (400, 401, 429):
            raise
        say_now(request, exc.message)
        return render(
            request, "login.html", None, status_code=exc.status, username=username, next=target
        )
    response = redirect(request, target)
    set_session(request, response, str(answer["token"]))
    return response


async def logout(request: Request) -> Response:
    await checked_form(request)
    response = redirect(request, url("login"), "You are logged out.")
    end_session(response)
    return response


async def register_page(request: Request) -> Response:
    return render(request, "register.html", None, username="", rules=PASSWORD_RULES)


async def register(request: Request) -> Response:
    form = await checked_form(request)
    username = field(form, "username")
    password, repeated = str(form.get("password") or ""), str(form.get("password2") or "")
    problem = ""
    if password != repeated:
        problem = "the two passwords differ: type the same password twice"
    else:
        try:
            await dashboard_of(request).api.call(
                "POST", "/users/register", None, json={"username": username, "password": password}
            )
        except LifecycleError as exc:
            if exc.status not in (400, 409):
                raise
            problem = exc.message
    if problem:
        say_now(request, problem[0].upper() + problem[1:])
        return render(
            request,
            "register.html",
            None,
            status_code=400,
            username=username,
            rules=PASSWORD_RULES,
        )
    return redirect(request, url("waiting") + "?username=" + quote(username, safe="@"))


async def waiting(request: Request) -> Response:
    return render(request, "waiting.html", None, username=request.query_params.get("username", ""))


@page()
async def profile(request: Request, viewer: Viewer) -> Response:
    board = dashboard_of(request)
    tokens = await board.api.call("GET", "/tokens", viewer.token)
    return render(
        request,
        "profile.html",
        viewer,
        remote=board.settings.external_lifecycle_url,
        tokens=tokens,
        current_hint=token_hint(viewer.token),
        rules=PASSWORD_RULES,
    )


@page()
async def regenerate_token(request: Request, viewer: Viewer) -> Response:
    await checked_form(request)
    answer = await dashboard_of(request).api.call(
        "POST", "/auth/token/user/regenerate", viewer.token
    )
    response = redirect(
        request,
        url("profile"),
        "Your token is regenerated; the former one no longer works. "
        "Log in again with the command below wherever you used it.",
    )
    set_session(request, response, str(answer["new_token"]))
    return response


@page()
async def change_password(request: Request, viewer: Viewer) -> Response:
    form = await checked_form(request)
    old, new = str(form.get("old_password") or ""), str(form.get("new_password") or "")
    if new != str(form.get("new_password2") or ""):
        return redirect(
            request, url("profile"), "The two new passwords differ; nothing changed.", "error"
        )
    try:
        await dashboard_of(request).api.call(
            "PUT",
            "/users/change_password",
            viewer.token,
            json={"old_password": old, "new_password": new},
            client_address=peer(request),
        )
    except LifecycleError as exc:
        if exc.status not in (400, 401, 429):
            raise
        message = exc.message[0].upper() + exc.message[1:]
        return redirect(request, url("profile"), f"{message}; nothing changed.", "error")
    return redirect(request, url("profile"), "Your password is changed.")


@page()
async def revoke_token(request: Request, viewer: Viewer) -> Response:
    await checked_form(request)
    token_id = request.path_params["id"]
    await dashboard_of(request).api.call("DELETE", f"/tokens/{quote(token_id)}", viewer.token)
    return redirect(request, url("profile"), "The token is revoked.")


def routes() -> list[BaseRoute]:
    return [
        Route("/dashboard/", home, methods=["GET"]),
        Route("/dashboard/login", login_page, methods=["GET"]),
        Route("/dashboard/login", login, methods=["POST"]),
        Route("/dashboard/logout", logout, methods=["POST"]),
        Route("/dashboard/register", register_page, methods=["GET"]),
        Route("/dashboard/register", register, methods=["POST"]),
        Route("/dashboard/waiting", waiting, methods=["GET"]),
        Route("/dashboard/profile", profile, methods=["GET"]),
        Route("/dashboard/profile/token", regenerate_token, methods=["POST"]),
        Route("/dashboard/profile/password", change_password, methods=["POST"]),
        Route("/dashboard/profile/tokens/{id}/revoke", revoke_token, methods=["POST"]),
    ]
