"""What every Dashboard page shares: the signed-in person, rendering, forms and messages.

Pages are plain Starlette endpoints wrapped by ``page`` (which finds who is signed in, or sends
them to the login page) and render Jinja2 templates. Forms post back to the Dashboard, which
calls Lifecycle with the person's token and redirects (post/redirect/get), carrying a one-time
message in a short-lived cookie.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from racetrack_core.dashboard.api import LifecycleClient, LifecycleError
from racetrack_core.dashboard.csrf import FIELD, Csrf, CsrfRefused
from racetrack_core.dashboard.times import ago, duration, iso, when
from racetrack_core.settings import Settings
from racetrack_core.wire import AUTH_HEADER

PREFIX = "/dashboard"
FLASH_COOKIE = "racetrack_flash"
#: How long the browser keeps the session cookie (the token itself does not expire).
SESSION_MAX_AGE = 31 * 24 * 3600


@dataclass(frozen=True)
class Viewer:
    """The signed-in person, as Lifecycle knows them from their token."""

    username: str
    token: str
    is_staff: bool


@dataclass
class Dashboard:
    """Everything the pages share, kept in the app's state."""

    settings: Settings
    api: LifecycleClient
    csrf: Csrf
    templates: jinja2.Environment


def dashboard_of(request: Request) -> Dashboard:
    board = request.app.state.dashboard
    assert isinstance(board, Dashboard)
    return board


def url(path: str = "") -> str:
    """A Dashboard URL from a path relative to it (``jobs`` → ``/dashboard/jobs``)."""
    return f"{PREFIX}/{path.lstrip('/')}"


# --- rendering ------------------------------------------------------------------------------


def build_templates() -> jinja2.Environment:
    folder = resources.files("racetrack_core.dashboard").joinpath("templates")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["url"] = url
    env.filters["when"] = when
    env.filters["ago"] = ago
    env.filters["iso"] = iso
    env.filters["duration"] = duration
    env.filters["urlpart"] = lambda value: quote(str(value), safe="")
    return env


def render(
    request: Request,
    template: str,
    viewer: Viewer | None,
    status_code: int = 200,
    **context: Any,
) -> Response:
    board = dashboard_of(request)
    html = board.templates.get_template(template).render(
        request=request,
        viewer=viewer,
        csrf_field=FIELD,
        csrf_token=board.csrf.token(request),
        messages=_take_messages(request),
        site=board.settings,
        now=time.time(),
        **context,
    )
    response = HTMLResponse(html, status_code=status_code)
    board.csrf.attach(request, response)
    if request.cookies.get(FLASH_COOKIE):
        response.delete_cookie(FLASH_COOKIE, path=PREFIX)
    return response


# --- one-time messages ----------------------------------------------------------------------


def redirect(request: Request, to: str, message: str = "", kind: str = "info") -> Response:
    """A 303 to ``to``, showing ``message`` once on the next page."""
    response = RedirectResponse(to, status_code=303)
    if message:
        queued = [*_read_messages(request), [kind, message[:800]]][-3:]
        encoded = base64.urlsafe_b64encode(json.dumps(queued).encode()).decode()
        response.set_cookie(
            FLASH_COOKIE,
            encoded,
            max_age=120,
            httponly=True,
            samesite="lax",
            path=PREFIX,
            secure=request.url.scheme == "https",
        )
    return response


def _read_messages(request: Request) -> list[list[str]]:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return []
    try:
        decoded = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except (ValueError, binascii.Error):
        return []
    if not isinstance(decoded, list):
        return []
    return [
        [str(item[0]), str(item[1])]
        for item in decoded
        if isinstance(item, list) and len(item) == 2 and item[0] in ("info", "error")
    ]


def _take_messages(request: Request) -> list[list[str]]:
    return [*_read_messages(request), *getattr(request.state, "messages", [])]


def say_now(request: Request, message: str, kind: str = "error") -> None:
    """Show a message on the page this request renders."""
    if not hasattr(request.state, "messages"):
        request.state.messages = []
    request.state.messages.append([kind, message])


# --- who is signed in ----------------------------------------------------------------------


async def viewer_of(request: Request) -> Viewer | None:
    """The person whose session cookie this request carries, if it is still valid."""
    token = request.cookies.get(AUTH_HEADER)
    if not token:
        return None
    try:
        me = await dashboard_of(request).api.call("GET", "/users/validate_user_auth", token)
    except LifecycleError as exc:
        if exc.status == 401:
            return None
        raise
    if not isinstance(me, dict) or me.get("kind", "user") != "user":
        return None
    return Viewer(username=str(me["username"]), token=token, is_staff=bool(me.get("is_staff")))


def set_session(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        AUTH_HEADER,
        token,
        max_age=SESSION_MAX_AGE,
        httponly=True,
        samesite="lax",
        path="/",
        secure=request.url.scheme == "https",
    )


def end_session(response: Response) -> None:
    response.delete_cookie(AUTH_HEADER, path="/")


Handler = Callable[[Request, Viewer], Awaitable[Response]]


def page(*, staff: bool = False) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a handler that needs a signed-in person (and staff, when ``staff``).

    Someone not signed in is sent to the login page and brought back afterwards; a person
    without staff rights gets a 403 page; Lifecycle's refusals become pages or messages.
    """

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            viewer = await viewer_of(request)
            if viewer is None:
                target = request.url.path
                if request.url.query:
                    target += "?" + request.url.query
                if request.method != "GET":
                    target = url("")
                response = RedirectResponse(
                    url("login") + "?next=" + quote(target, safe=""), status_code=303
                )
                if request.cookies.get(AUTH_HEADER):
                    end_session(response)
                return response
            if staff and not viewer.is_staff:
                return render(
                    request,
                    "error.html",
                    viewer,
                    status_code=403,
                    title="Staff only",
                    message="This page is for staff members. Ask an administrator if you "
                    "need something done here.",
                )
            request.state.viewer = viewer
            return await handler(request, viewer)

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return wrap


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token is checked (CsrfRefused otherwise)."""
    form = await request.form()
    dashboard_of(request).csrf.check(request, form.get(FIELD))
    return form


def field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def safe_next(target: str | None) -> str:
    """A redirect target inside the Dashboard only (no open redirects)."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//"):
        return target
    return url("jobs")


# --- pages of a long list -------------------------------------------------------------------


@dataclass(frozen=True)
class Pager:
    """Where a page is in a long list, and the address of any other page (``_pager.html``)."""

    page: int
    pages: int
    link: Callable[[int], str]


def paged(
    request: Request, items: list[Any], per_page: int, link: Callable[[int], str]
) -> tuple[list[Any], Pager]:
    """The items of the page that ``?page=`` asks for (the last, past it; the first, for
    nonsense), and its pager."""
    pages = max(1, -(-len(items) // per_page))
    given = request.query_params.get("page", "1")
    page = min(int(given), pages) if given.isdigit() and int(given) > 0 else 1
    return items[(page - 1) * per_page : page * per_page], Pager(page, pages, link)


# --- asking Lifecycle ----------------------------------------------------------------------

#: Lifecycle's answers that mean "not done, and here is why", shown as a message on the page.
REFUSALS = (400, 404, 409, 413)

Done = str | Callable[[Any], str]


async def api(request: Request, viewer: Viewer, method: str, path: str, **kwargs: Any) -> Any:
    """Lifecycle's answer to ``method path``, asked with the viewer's token."""
    return await dashboard_of(request).api.call(method, path, viewer.token, **kwargs)


async def act(
    request: Request,
    viewer: Viewer,
    back: str,
    method: str,
    path: str,
    done: Done,
    onward: Done | None = None,
    **kwargs: Any,
) -> Response:
    """Ask Lifecycle to do something and go back to ``back`` saying ``done`` (a sentence, or
    one made from Lifecycle's answer); a refusal goes back as an error message instead.
    ``onward``, when given, is where to go after success instead (or made from the answer)."""
    try:
        answer = await api(request, viewer, method, path, **kwargs)
    except LifecycleError as exc:
        if exc.status not in REFUSALS:
            raise
        return redirect(request, back, sentence(exc.message), "error")
    target = back if onward is None else onward if isinstance(onward, str) else onward(answer)
    return redirect(request, target, done if isinstance(done, str) else done(answer))


def sentence(text: str) -> str:
    """Lifecycle's error text as a sentence: ``you cannot…`` → ``You cannot….``"""
    text = text.strip()
    if not text:
        return "Lifecycle refused this without saying why."
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def at(*parts: str) -> str:
    """A Lifecycle API path from its parts, each quoted: ``at("users", name, "activate")``."""
    return "".join("/" + quote(part, safe="@") for part in parts)


async def refused_page(request: Request, exc: Exception) -> Response:
    """Lifecycle refused or could not be reached, or a form failed its CSRF check."""
    viewer = getattr(request.state, "viewer", None)
    if isinstance(exc, CsrfRefused):
        return render(
            request,
            "error.html",
            None,
            status_code=403,
            title="Form refused",
            message=f"{exc}. Reload the page and submit the form again.",
        )
    assert isinstance(exc, LifecycleError)
    if exc.status == 401:
        response = RedirectResponse(url("login"), status_code=303)
        end_session(response)
        return response
    titles = {403: "Not allowed", 404: "Not found", 409: "Conflict", 503: "Unavailable"}
    status = exc.status if exc.status in (400, 403, 404, 409, 413, 429, 503) else 502
    return render(
        request,
        "error.html",
        viewer,
        status_code=status,
        title=titles.get(exc.status, "Refused"),
        message=exc.message,
    )
