"""Calls into the deployment hooks: a job's extra environment and the after-deploy/delete events.

The pipeline (and anything that embeds the core) uses these instead of calling the hooks
directly, so that every caller gets the same merging, checking and error handling.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from racetrack_core.errors import PluginError
from racetrack_core.plugins import PluginManager
from racetrack_core.registry import JobType

log = logging.getLogger("racetrack.events")

#: Variables that Racetrack sets on every job; neither a plugin nor a manifest may set them.
RESERVED_ENV = frozenset(
    {
        "PUB_URL",
        "JOB_NAME",
        "JOB_VERSION",
        "JOB_PORT",
        "AUTH_TOKEN",
        "JOB_DEPLOYMENT_TIMESTAMP",
        "JOB_MANIFEST_YAML",
        "REQUEST_TRACING_HEADER",
    }
)
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def plugin_runtime_env(
    plugins: PluginManager, manifest: Mapping[str, Any], job_type: JobType
) -> dict[str, str]:
    """Merge what every plugin's ``job_runtime_env`` returns.

    When two plugins set one variable, the plugin called first wins, so a ``tryfirst`` plugin
    overrides and a ``trylast`` one only provides a default.

    Raise PluginError naming the plugin when it returns a reserved or malformed name or a value
    that is not a string.
    """
    merged: dict[str, str] = {}
    for plugin, call in reversed(plugins.implementations("job_runtime_env")):
        result = call(manifest=manifest, job_type=job_type)
        if result is None:
            continue
        if not isinstance(result, Mapping):
            raise PluginError(
                f"plugin '{plugin}' returned {type(result).__name__} from "
                "job_runtime_env; return a mapping of variable names to strings"
            )
        for name, value in result.items():
            if not isinstance(name, str) or not ENV_NAME.match(name):
                raise PluginError(
                    f"plugin '{plugin}' returned the variable name {name!r} from "
                    "job_runtime_env, which is not a valid environment variable name"
                )
            if name in RESERVED_ENV:
                raise PluginError(
                    f"plugin '{plugin}' tried to set {name} in job_runtime_env; "
                    "Racetrack sets it itself"
                )
            if not isinstance(value, str):
                raise PluginError(
                    f"plugin '{plugin}' returned a {type(value).__name__} for {name} "
                    "from job_runtime_env; values must be strings"
                )
            merged[name] = value
    return merged


def notify_job_deployed(
    plugins: PluginManager,
    job: Mapping[str, Any],
    manifest: Mapping[str, Any],
    deployed_by: str | None,
) -> list[str]:
    """Call every ``after_job_deploy``; return one warning per plugin that failed.

    A failing plugin does not fail the deployment that has already succeeded: its error
    becomes a warning that the deployment records and the CLI prints.
    """
    warnings = []
    for _plugin, call in plugins.implementations("after_job_deploy"):
        try:
            call(job=job, manifest=manifest, deployed_by=deployed_by)
        except PluginError as exc:
            log.warning("%s", exc)
            warnings.append(str(exc))
    return warnings


def notify_job_deleted(
    plugins: PluginManager, job: Mapping[str, Any], deleted_by: str | None
) -> list[str]:
    """Call every ``after_job_delete``; failures are logged and returned, never raised."""
    failures = []
    for _plugin, call in plugins.implementations("after_job_delete"):
        try:
            call(job=job, deleted_by=deleted_by)
        except PluginError as exc:
            log.warning("%s", exc)
            failures.append(str(exc))
    return failures
