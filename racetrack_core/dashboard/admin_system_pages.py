"""Administration pages (staff only) of the system: public endpoint requests, plugins (install
from an uploaded wheel, uninstall) and the audit log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import PurePosixPath
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from racetrack_core.dashboard.pages import (
    Viewer,
    act,
    api,
    at,
    checked_form,
    page,
    redirect,
    render,
    url,
)
from racetrack_core.wire import MAX_WHEEL_BYTES

#: Installing or uninstalling a plugin runs uv and loads every plugin afresh.
PLUGIN_TIMEOUT = 300.0
AUDIT_LIMIT = 200


# --- public endpoints -----------------------------------------------------------------------


@page(staff=True)
async def public_endpoints(request: Request, viewer: Viewer) -> Response:
    """Every public endpoint request, those awaiting approval first."""
    rows = await api(request, viewer, "GET", "/public-endpoints")
    rows.sort(key=lambda row: (bool(row["active"]), row["job_name"], row["job_version"]))
    return render(request, "admin/public_endpoints.html", viewer, requests=rows)


def endpoint_of(row: dict[str, Any]) -> str:
    return f"{row['endpoint']} of job {row['job_name']} {row['job_version']}"


def endpoint_action(method: str, outcome: str) -> Callable[[Request], Awaitable[Response]]:
    """The handler that approves (POST) or closes (DELETE) a public endpoint; ``outcome``
    says what happened, with ``{}`` for the endpoint."""

    @page(staff=True)
    async def change(request: Request, viewer: Viewer) -> Response:
        await checked_form(request)
        path = at("public-endpoints", request.path_params["id"], "approve")
        return await act(
            request,
            viewer,
            url("admin/public-endpoints"),
            method,
            path,
            lambda row: outcome.format(endpoint_of(row)),
        )

    return change


approve_endpoint = endpoint_action("POST", "Approved {}: anyone may call it without a token.")
revoke_endpoint = endpoint_action("DELETE", "Closed {}: calls need a token again.")


# --- plugins --------------------------------------------------------------------------------


@page(staff=True)
async def plugins(request: Request, viewer: Viewer) -> Response:
    installed = await api(request, viewer, "GET", "/plugin")
    return render(request, "admin/plugins.html", viewer, plugins=installed)


def plugin_names(plugins: list[dict[str, Any]]) -> str:
    """``plugin hello 0.1.0``, ``plugins a 1.0, b 2.0``, or that there is none."""
    if not plugins:
        return "it provides no plugin"
    names = ", ".join(f"{p['name']} {p.get('version') or ''}".strip() for p in plugins)
    return f"plugin{'s' if len(plugins) > 1 else ''} {names}"


@page(staff=True)
async def upload_plugin(request: Request, viewer: Viewer) -> Response:
    """Send the uploaded wheel to Lifecycle, which installs it into the running server."""
    wheel = (await checked_form(request)).get("wheel")
    back = url("admin/plugins")
    if not isinstance(wheel, UploadFile) or not wheel.filename:
        return redirect(request, back, "Choose a wheel file (.whl) to upload.", "error")
    # Some browsers send the whole path of the file on the person's computer.
    filename = PurePosixPath(wheel.filename.replace("\\", "/")).name
    if not filename.endswith(".whl"):
        return redirect(
            request,
            back,
            f"'{filename}' is not a wheel: upload a .whl file (build one with "
            "'uv build --wheel' in the plugin's folder).",
            "error",
        )
    if wheel.size is not None and wheel.size > MAX_WHEEL_BYTES:
        return redirect(
            request, back, f"A plugin wheel may be {MAX_WHEEL_BYTES // 2**20} MiB at most.", "error"
        )
    return await act(
        request,
        viewer,
        back,
        "POST",
        at("plugin", "upload", filename),
        lambda added: f"Installed {filename}: {plugin_names(added)}.",
        content=await wheel.read(),
        timeout=PLUGIN_TIMEOUT,
    )


@page(staff=True)
async def uninstall_plugin_page(request: Request, viewer: Viewer) -> Response:
    name = request.path_params["name"]
    installed = await api(request, viewer, "GET", "/plugin")
    plugin = next((plugin for plugin in installed if plugin["name"] == name), None)
    if plugin is None:
        return redirect(
            request, url("admin/plugins"), f"No plugin named {name} is installed.", "error"
        )
    return render(request, "admin/plugin_uninstall.html", viewer, plugin=plugin)


@page(staff=True)
async def uninstall_plugin(request: Request, viewer: Viewer) -> Response:
    await checked_form(request)
    name = request.path_params["name"]
    return await act(
        request,
        viewer,
        url("admin/plugins"),
        "DELETE",
        at("plugin", name),
        f"Uninstalled plugin {name}.",
        timeout=PLUGIN_TIMEOUT,
    )


# --- audit log ------------------------------------------------------------------------------


def facts(details: Any, prefix: str = "") -> list[tuple[str, str]]:
    """An event's details as (name, value) pairs, nested ones named ``grant.scope``."""
    if not isinstance(details, dict):
        return []
    pairs: list[tuple[str, str]] = []
    for key, value in details.items():
        if isinstance(value, dict):
            pairs += facts(value, f"{prefix}{key}.")
        elif value is not None:
            pairs.append((f"{prefix}{key}", str(value)))
    return pairs


@page(staff=True)
async def audit(request: Request, viewer: Viewer) -> Response:
    """The newest events: ``?job_name=&job_version=&related_to_me=true``."""
    params = request.query_params
    job_name = params.get("job_name", "").strip()
    job_version = params.get("job_version", "").strip()
    mine = params.get("related_to_me", "") in ("1", "true", "on", "yes")
    query = {"limit": str(AUDIT_LIMIT)}
    if job_name:
        query["job_name"] = job_name
    if job_version:
        query["job_version"] = job_version
    if mine:
        query["related_to_me"] = "true"
    answer = await api(request, viewer, "GET", "/audit/activity", params=query)
    events = [{**event, "facts": facts(event["details"])} for event in answer["events"]]
    return render(
        request,
        "admin/audit.html",
        viewer,
        events=events,
        job_name=job_name,
        job_version=job_version,
        mine=mine,
        limit=AUDIT_LIMIT,
    )


def routes() -> list[BaseRoute]:
    admin = "/dashboard/admin"
    return [
        Route(admin + "/public-endpoints", public_endpoints, methods=["GET"]),
        Route(admin + "/public-endpoints/{id}/approve", approve_endpoint, methods=["POST"]),
        Route(admin + "/public-endpoints/{id}/revoke", revoke_endpoint, methods=["POST"]),
        Route(admin + "/plugins", plugins, methods=["GET"]),
        Route(admin + "/plugins", upload_plugin, methods=["POST"]),
        Route(admin + "/plugins/{name}/uninstall", uninstall_plugin_page, methods=["GET"]),
        Route(admin + "/plugins/{name}/uninstall", uninstall_plugin, methods=["POST"]),
        Route(admin + "/audit", audit, methods=["GET"]),
    ]
