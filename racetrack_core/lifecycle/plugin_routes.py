"""Plugin routes: list what is installed; staff install, upgrade or uninstall plugins.

A plugin comes as a wheel sent as the body of ``POST /plugin/upload/{filename}``, or as a
source in ``POST /plugin/install`` (``{"source": "racetrack-hello-jobtype==0.1.0"}`` from the
server's package index, or ``{"source": "git+https://..."}``). The work is
:mod:`racetrack_core.lifecycle.plugin_changes`: the new plugins are used without a restart and
recorded for the other replicas. A change that would leave deployed jobs without their job
type answers 409 naming them, unless ``force`` is true (``?force=true``, or in the body); when
uv fails, the answer carries the end of its output.
"""

from __future__ import annotations

import re
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from racetrack_core.auth import Caller
from racetrack_core.errors import PluginError
from racetrack_core.lifecycle import answers, bodies, plugin_changes
from racetrack_core.lifecycle.accounts import require_staff
from racetrack_core.lifecycle.context import caller_of, service_of
from racetrack_core.lifecycle.openapi import schemas
from racetrack_core.lifecycle.plugin_changes import Change, InUseError
from racetrack_core.lifecycle.responses import (
    BadRequest,
    Conflict,
    JSONAnswer,
    NotFound,
    PayloadTooLarge,
    read_json_object,
)
from racetrack_core.plugin_install import InstallError, NotInstalled
from racetrack_core.plugin_sources import SourceError, parse
from racetrack_core.plugins import PluginInfo
from racetrack_core.wire import MAX_WHEEL_BYTES

#: A wheel's file name (PEP 427): name-version(-build)?-python-abi-platform.whl
WHEEL_NAME = re.compile(r"^[A-Za-z0-9_.]+-[A-Za-z0-9_.!+]+(-[A-Za-z0-9_.]+){3,4}\.whl$")


@schemas(answer=list[PluginInfo])
def list_plugins(request: Request) -> JSONAnswer:
    """Installed plugins with their versions, hooks, job types and targets."""
    caller_of(request)
    plugins = service_of(request).plugins
    return JSONAnswer([info.as_dict() for info in plugins.describe()])


@schemas(answer=list[str])
def job_type_versions(request: Request) -> JSONAnswer:
    """Every installed job type version, as ``name:version``."""
    caller_of(request)
    return JSONAnswer([job_type.ref for job_type in service_of(request).plugins.job_types])


@schemas(answer=list[answers.TargetRecord])
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


@schemas(
    body={"type": "string", "format": "binary"},
    body_media="application/octet-stream",
    query=bodies.ForceQuery,
    answer=list[dict[str, Any]],
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
    wheel = (filename, bytes(body))
    force = _flag(request.query_params.get("force"))
    change = await anyio.to_thread.run_sync(
        lambda: _changed(
            lambda: plugin_changes.install(service, caller.name, wheel=wheel, force=force)
        )
    )
    return JSONAnswer(change.plugins)


@schemas(body=bodies.PluginSourceBody, query=bodies.ForceQuery, answer=answers.PluginChange)
async def install_plugin(request: Request) -> JSONAnswer:
    """Install a plugin from ``{"source": ...}``: a requirement or a git URL (staff only);
    answer the plugins it added or upgraded and the jobs a forced upgrade stopped."""
    service = service_of(request)
    caller = await _caller(request)
    require_staff(caller)
    body = await read_json_object(request)
    text = body.get("source")
    if not isinstance(text, str) or not text.strip():
        raise BadRequest(
            "'source' must name the plugin to install: a requirement such as "
            "racetrack-hello-jobtype==0.1.0, or a git URL (git+https://host/repo.git)"
        )
    force = _flag(body.get("force")) or _flag(request.query_params.get("force"))
    try:
        source = parse(text)
    except SourceError as exc:
        raise BadRequest(str(exc)) from None
    change = await anyio.to_thread.run_sync(
        lambda: _changed(
            lambda: plugin_changes.install(service, caller.name, source=source, force=force)
        )
    )
    return JSONAnswer(_answer(change))


@schemas(query=bodies.ForceQuery, answer=answers.PluginChange)
def uninstall_plugin(request: Request) -> JSONAnswer:
    """Uninstall the distribution that provides a plugin (staff only); built-ins refuse, and
    so does a plugin whose job types deployed jobs use, unless ``?force=true``."""
    service = service_of(request)
    caller = caller_of(request)
    require_staff(caller)
    name = request.path_params["name"]
    force = _flag(request.query_params.get("force"))
    change = _changed(lambda: plugin_changes.uninstall(service, caller.name, name, force=force))
    return JSONAnswer(_answer(change))


def _changed(make: Any) -> Change:
    """Run a change; turn its refusals into answers (409 for jobs in the way, else 400)."""
    try:
        change: Change = make()
    except InUseError as exc:
        raise Conflict(str(exc)) from None
    except NotInstalled as exc:
        raise NotFound(str(exc)) from None
    except (InstallError, SourceError) as exc:
        raise BadRequest(str(exc)) from None
    except PluginError as exc:
        raise BadRequest(f"the plugin was installed but could not be loaded: {exc}") from None
    return change


def _answer(change: Change) -> answers.PluginChange:
    return {
        "plugins": change.plugins,
        "distributions": change.distributions,
        "jobs_stopped": change.jobs_stopped,
    }


def _flag(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in {"1", "true", "yes"})


async def _caller(request: Request) -> Caller:
    return await anyio.to_thread.run_sync(caller_of, request)


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/plugin", list_plugins, methods=["GET"]),
        Route("/api/v1/plugin/job_type/versions", job_type_versions, methods=["GET"]),
        Route("/api/v1/plugin/infrastructure_targets", infrastructure_targets, methods=["GET"]),
        Route("/api/v1/plugin/upload/{filename}", upload_plugin, methods=["POST"]),
        Route("/api/v1/plugin/install", install_plugin, methods=["POST"]),
        Route("/api/v1/plugin/{name}", uninstall_plugin, methods=["DELETE"]),
        # racetrack-client names the version too; a plugin has one installed version.
        Route("/api/v1/plugin/{name}/{version}", uninstall_plugin, methods=["DELETE"]),
    ]
