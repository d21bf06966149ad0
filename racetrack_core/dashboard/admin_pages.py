"""Administration pages (staff only): users, external consumers and their tokens, grants,
public endpoints, plugins and the audit log, over the Lifecycle API's staff routes.

Public endpoints, plugins and the audit log are in ``admin_system_pages``. Every action posts
a form, asks Lifecycle, and goes back to its page with a message; what
Lifecycle refuses (deactivating yourself, a grant on a family that does not exist) comes back
as an error message there, in Lifecycle's words. A new ESC token is the one secret shown: it is
rendered in the answer to its form, never carried in the message cookie.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from racetrack_core.access import Scope, SubjectKind
from racetrack_core.dashboard.api import LifecycleError
from racetrack_core.dashboard.pages import (
    REFUSALS,
    Viewer,
    act,
    api,
    at,
    checked_form,
    dashboard_of,
    field,
    page,
    paged,
    redirect,
    render,
    sentence,
    url,
)

#: Installing or uninstalling a plugin runs uv and loads every plugin afresh.
PLUGIN_TIMEOUT = 300.0
AUDIT_LIMIT = 200
SUBJECT_KINDS = {
    SubjectKind.USER.value: "User",
    SubjectKind.ESC.value: "External consumer (ESC)",
    SubjectKind.JOB_FAMILY.value: "Job family",
}
GRANTS_PER_PAGE = 100
GRANT_FIELDS = ("subject_kind", "subject_name", "scope", "job_family", "job_version", "endpoint")

# --- overview -------------------------------------------------------------------------------


@page(staff=True)
async def overview(request: Request, viewer: Viewer) -> Response:
    users, consumers, grants, pending, plugins = await asyncio.gather(
        api(request, viewer, "GET", "/users"),
        api(request, viewer, "GET", "/escs"),
        api(request, viewer, "GET", "/grants"),
        api(request, viewer, "GET", "/public-endpoints", params={"pending": "true"}),
        api(request, viewer, "GET", "/plugin"),
    )
    counts = [
        ("Users awaiting activation", sum(not user["is_active"] for user in users), "users"),
        ("External consumers", len(consumers), "escs"),
        ("Grants", len(grants), "grants"),
        ("Public endpoints awaiting approval", len(pending), "public-endpoints"),
        ("Plugins", len(plugins), "plugins"),
    ]
    docs = dashboard_of(request).settings.external_lifecycle_url.rstrip("/") + "/docs"
    return render(request, "admin/overview.html", viewer, counts=counts, docs=docs)


# --- users ----------------------------------------------------------------------------------


@page(staff=True)
async def users(request: Request, viewer: Viewer) -> Response:
    """Every user, those awaiting activation first."""
    everyone = await api(request, viewer, "GET", "/users")
    everyone.sort(key=lambda user: (bool(user["is_active"]), user["username"]))
    return render(request, "admin/users.html", viewer, users=everyone)


async def change_user(
    request: Request, viewer: Viewer, change: str, done: str, body: Any = None
) -> Response:
    name = request.path_params["username"]
    path = at("users", name, change)
    return await act(
        request, viewer, url("admin/users"), "POST", path, done.format(name=name), json=body
    )


@page(staff=True)
async def activate_user(request: Request, viewer: Viewer) -> Response:
    await checked_form(request)
    return await change_user(request, viewer, "activate", "Activated {name}.")


@page(staff=True)
async def deactivate_user(request: Request, viewer: Viewer) -> Response:
    await checked_form(request)
    return await change_user(request, viewer, "deactivate", "Deactivated {name}.")


@page(staff=True)
async def set_staff(request: Request, viewer: Viewer) -> Response:
    is_staff = field(await checked_form(request), "is_staff") == "true"
    done = "{name} is staff now." if is_staff else "{name} is no longer staff."
    return await change_user(request, viewer, "staff", done, {"is_staff": is_staff})


# --- external consumers ---------------------------------------------------------------------


@page(staff=True)
async def escs(request: Request, viewer: Viewer) -> Response:
    """Every ESC with its active tokens."""
    consumers = await api(request, viewer, "GET", "/escs", params={"tokens": "true"})
    return render(request, "admin/escs.html", viewer, consumers=consumers)


@page(staff=True)
async def create_esc(request: Request, viewer: Viewer) -> Response:
    name = field(await checked_form(request), "name")
    done = f"Created external consumer {name}: give it a token, then grant it what it may call."
    return await act(request, viewer, url("admin/escs"), "POST", "/escs", done, json={"name": name})


@page(staff=True)
async def new_esc_token(request: Request, viewer: Viewer) -> Response:
    """Create a token and show it in this answer, the only time it is shown."""
    days = field(await checked_form(request), "expires_in_days")
    if days and not days.isdigit():
        return redirect(
            request,
            url("admin/escs"),
            f"'{days}' is not a number of days: give a whole number, or leave the expiry empty "
            "for a token that does not expire.",
            "error",
        )
    esc_id = request.path_params["id"]
    try:
        consumer = await api(request, viewer, "GET", at("escs", esc_id, "auth_data"))
        token = await api(
            request,
            viewer,
            "POST",
            at("escs", esc_id, "auth_token"),
            json={"expires_in_days": int(days)} if days else {},
        )
    except LifecycleError as exc:
        if exc.status not in REFUSALS:
            raise
        return redirect(request, url("admin/escs"), sentence(exc.message), "error")
    return render(request, "admin/esc_token.html", viewer, consumer=consumer, token=token)


@page(staff=True)
async def revoke_esc_token(request: Request, viewer: Viewer) -> Response:
    await checked_form(request)
    params = request.path_params
    path = at("escs", params["id"], "auth_token", params["token_id"])
    return await act(
        request,
        viewer,
        url("admin/escs"),
        "DELETE",
        path,
        lambda token: f"Revoked token {token['hint']}; it no longer works.",
    )


@page(staff=True)
async def delete_esc_page(request: Request, viewer: Viewer) -> Response:
    consumer = await api(request, viewer, "GET", at("escs", request.path_params["id"], "auth_data"))
    grants = await api(
        request,
        viewer,
        "GET",
        "/grants",
        params={"subject_kind": "esc", "subject_name": consumer["name"]},
    )
    return render(request, "admin/esc_delete.html", viewer, consumer=consumer, grants=grants)


@page(staff=True)
async def delete_esc(request: Request, viewer: Viewer) -> Response:
    await checked_form(request)
    consumer = await api(request, viewer, "GET", at("escs", request.path_params["id"], "auth_data"))
    done = f"Deleted external consumer {consumer['name']} with its tokens and grants."
    return await act(request, viewer, url("admin/escs"), "DELETE", at("escs", consumer["id"]), done)


# --- grants ---------------------------------------------------------------------------------


def coverage(grant: dict[str, Any]) -> str:
    """What a grant covers, as people read it: every job, a family, a version, an endpoint."""
    family, version, endpoint = grant["job_family"], grant["job_version"], grant["endpoint"]
    if not family:
        return "every job"
    job = f"job {family} version {version}" if version else f"job {family} (every version)"
    return f"endpoints under {endpoint} of {job}" if endpoint else job


@page(staff=True)
async def grants(request: Request, viewer: Viewer) -> Response:
    """Every grant; ``?subject=`` keeps those whose subject's name contains it."""
    wanted = request.query_params.get("subject", "").strip()
    everything = await api(request, viewer, "GET", "/grants")
    matching = [grant for grant in everything if wanted.lower() in grant["subject_name"].lower()]
    shown, pager = paged(
        request,
        matching,
        GRANTS_PER_PAGE,
        lambda n: url("admin/grants") + "?" + urlencode({"subject": wanted, "page": n}),
    )
    return render(
        request,
        "admin/grants.html",
        viewer,
        grants=[{**grant, "covers": coverage(grant)} for grant in shown],
        matching=len(matching),
        pager=pager,
        total=len(everything),
        subject=wanted,
        kinds=SUBJECT_KINDS,
        scopes=[scope.value for scope in Scope],
    )


@page(staff=True)
async def create_grant(request: Request, viewer: Viewer) -> Response:
    form = await checked_form(request)
    body = {name: field(form, name) for name in GRANT_FIELDS if field(form, name)}
    return await act(
        request,
        viewer,
        url("admin/grants"),
        "POST",
        "/grants",
        lambda grant: f"Granted {grant['subject']} '{grant['scope']}' on {coverage(grant)}.",
        json=body,
    )


@page(staff=True)
async def revoke_grant(request: Request, viewer: Viewer) -> Response:
    await checked_form(request)
    path = at("grants", request.path_params["id"])
    return await act(request, viewer, url("admin/grants"), "DELETE", path, "The grant is revoked.")


def routes() -> list[BaseRoute]:
    admin = "/dashboard/admin"
    return [
        Route(admin, overview, methods=["GET"]),
        Route(admin + "/users", users, methods=["GET"]),
        Route(admin + "/users/{username}/activate", activate_user, methods=["POST"]),
        Route(admin + "/users/{username}/deactivate", deactivate_user, methods=["POST"]),
        Route(admin + "/users/{username}/staff", set_staff, methods=["POST"]),
        Route(admin + "/escs", escs, methods=["GET"]),
        Route(admin + "/escs", create_esc, methods=["POST"]),
        Route(admin + "/escs/{id}/tokens", new_esc_token, methods=["POST"]),
        Route(admin + "/escs/{id}/tokens/{token_id}/revoke", revoke_esc_token, methods=["POST"]),
        Route(admin + "/escs/{id}/delete", delete_esc_page, methods=["GET"]),
        Route(admin + "/escs/{id}/delete", delete_esc, methods=["POST"]),
        Route(admin + "/grants", grants, methods=["GET"]),
        Route(admin + "/grants", create_grant, methods=["POST"]),
        Route(admin + "/grants/{id}/revoke", revoke_grant, methods=["POST"]),
    ]
