"""Plugin routes: list what is installed; staff install a wheel or uninstall a plugin.

An install puts the wheel into the server's own Python environment with uv, checks in a fresh
interpreter that every plugin still loads (undoing the install otherwise), then registers the
new plugins in the running server, so no restart is needed. The install and uninstall steps
are :mod:`racetrack_core.plugin_install`, as for ``racetrack plugin install --local``; when uv
fails, the answer carries the end of its output.
"""

from __future__ import annotations

import re
import tempfile
import threading
from pathlib import Path
from typing import Any

import anyio.to_thread
from sqlmodel import Session
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from racetrack_core.auth import Caller
from racetrack_core.errors import PluginError
from racetrack_core.lifecycle import audit
from racetrack_core.lifecycle.accounts import require_staff
from racetrack_core.lifecycle.audit import EventKind
from racetrack_core.lifecycle.context import caller_of, service_of
from racetrack_core.lifecycle.responses import BadRequest, JSONAnswer, PayloadTooLarge
from racetrack_core.lifecycle.service import LifecycleService
from racetrack_core.plugin_install import InstallError
from racetrack_core.wire import MAX_WHEEL_BYTES

#: A wheel's file name (PEP 427): name-version(-build)?-python-abi-platform.whl
WHEEL_NAME = re.compile(r"^[A-Za-z0-9_.]+-[A-Za-z0-9_.!+]+(-[A-Za-z0-9_.]+){3,4}\.whl$")
#: One install or uninstall at a time: uv and the plugin manager are not shared safely.
_changing = threading.Lock()


def list_plugins(request: Request) -> JSONAnswer:
    """Installed plugins with their versions, hooks, job types and targets."""
    caller_of(request)
    plugins = service_of(request).plugins
    return JSONAnswer([info.as_dict() for info in plugins.describe()])


def job_type_versions(request: Request) -> JSONAnswer:
    """Every installed job type version, as ``name:version``."""
    caller_of(request)
    return JSONAnswer([job_type.ref for job_type in service_of(request).plugins.job_types])


def infrastructure_targets(request: Request) -> JSONAnswer:
    """Installed infrastructure targets with the plugin that provides each."""
    caller_of(request)
    plugins = service_of(request).plugins
    return JSONAnswer(
        [
            {"name": target.name, "plugin": target.plugin, "description": target.description}
            for target in plugins.infrastructure_targets
        ]
    )


async def upload_plugin(request: Request) -> JSONAnswer:
    """Install a plugin from a wheel sent as the raw body (staff only); answer its plugins."""
    service = service_of(request)
    caller = await _caller(request)
    require_staff(caller)
    filename = request.path_params["filename"]
    if not WHEEL_NAME.fullmatch(filename):
        raise BadRequest(
            f"'{filename}' is not a wheel's file name; build one with 'uv build --wheel' and "
            "upload the .whl file"
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_WHEEL_BYTES:
            raise PayloadTooLarge(f"a plugin wheel may be {MAX_WHEEL_BYTES // 2**20} MiB at most")
    if not body.startswith(b"PK"):
        raise BadRequest(f"'{filename}' is not a wheel (a wheel is a zip archive)")
    installed = await anyio.to_thread.run_sync(_install, service.plugins, filename, bytes(body))
    await anyio.to_thread.run_sync(
        _audit, service, EventKind.PLUGIN_INSTALLED, caller.name, filename
    )
    return JSONAnswer(installed)


def _audit(service: LifecycleService, kind: EventKind, actor: str, subject: str) -> None:
    with Session(service.engine) as session:
        audit.record(session, kind, actor, subject=subject)
        session.commit()


def _install(plugins: Any, filename: str, wheel: bytes) -> list[dict[str, Any]]:
    from racetrack_core import plugin_install

    with _changing, tempfile.TemporaryDirectory(prefix="racetrack-plugin-") as folder:
        path = Path(folder) / filename
        path.write_bytes(wheel)
        try:
            report = plugin_install.install(str(path))
        except InstallError as exc:
            raise BadRequest(str(exc)) from None
    try:
        added = plugins.load_new()
    except PluginError as exc:
        raise BadRequest(f"the plugin was installed but could not be loaded: {exc}") from None
    infos = [info.as_dict() for info in plugins.describe() if info.name in set(added)]
    return infos or report.plugins


def uninstall_plugin(request: Request) -> JSONAnswer:
    """Uninstall the distribution that provides a plugin (staff only); built-ins refuse."""
    from racetrack_core import plugin_install

    service = service_of(request)
    caller = caller_of(request)
    require_staff(caller)
    name = request.path_params["name"]
    with _changing:
        try:
            _distribution, plugin_names = plugin_install.uninstall(name)
        except InstallError as exc:
            raise BadRequest(str(exc)) from None
        for plugin_name in plugin_names:
            if plugin_name in service.plugins.names():
                service.plugins.unregister(plugin_name)
    _audit(service, EventKind.PLUGIN_UNINSTALLED, caller.name, name)
    return JSONAnswer(None)


async def _caller(request: Request) -> Caller:
    return await anyio.to_thread.run_sync(caller_of, request)


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/plugin", list_plugins, methods=["GET"]),
        Route("/api/v1/plugin/job_type/versions", job_type_versions, methods=["GET"]),
        Route("/api/v1/plugin/infrastructure_targets", infrastructure_targets, methods=["GET"]),
        Route("/api/v1/plugin/upload/{filename}", upload_plugin, methods=["POST"]),
        Route("/api/v1/plugin/{name}", uninstall_plugin, methods=["DELETE"]),
        # racetrack-client names the version too; a plugin has one installed version.
        Route("/api/v1/plugin/{name}/{version}", uninstall_plugin, methods=["DELETE"]),
    ]
