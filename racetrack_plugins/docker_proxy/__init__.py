"""The ``docker-proxy`` job type: any HTTP server built from the job's own Dockerfile.

The author's Dockerfile builds an image whose command serves HTTP on port 7004 (or
``jobtype_extra.user_module_port``). ``image`` is the image recipe: the job directory as the
build context, the Dockerfile fitted by ``dockerfile`` (``FROM`` lines through the site's
base-image map, a small static proxy added, ``proxy/``, Go standard library only). The proxy
serves the runtime contract and starts the image's own command in a private network namespace,
so that every job listens on 7004 side by side and only the proxy reaches it. There is no
process recipe: the ``local`` target refuses these jobs while the manifest is validated.
See docs/job-types/docker-proxy.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any

from racetrack_core import hookimpl
from racetrack_core.manifest import Problem
from racetrack_core.recipes import Recipes
from racetrack_core.registry import JobType, JobTypeRegistrar
from racetrack_plugins.docker_proxy.image import DockerProxyImageRecipe

VERSION = "1.0.0"

EXTRA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "dockerfile_path": {
            "type": "string",
            "pattern": r"^[^/]",
            "x-hint": "a relative path, like Dockerfile",
            "description": "The job's Dockerfile, relative to the job directory (default "
            "Dockerfile).",
        },
        "user_module_port": {
            "type": "integer",
            "minimum": 1,
            "maximum": 65535,
            "description": "Port the job's own server listens on inside its container "
            "(default 7004).",
        },
    },
}


@hookimpl
def register_job_types(registry: JobTypeRegistrar) -> None:
    registry.register(
        "docker-proxy",
        VERSION,
        extra_schema=EXTRA_SCHEMA,
        description="Any HTTP server built from the job's own Dockerfile (containers only).",
        recipes=Recipes(image=DockerProxyImageRecipe()),
        docs_page=True,  # the proxy's docs.go; the job's server is reached under /api/v1 only
    )


@hookimpl
def validate_manifest(manifest: Mapping[str, Any], job_type: JobType) -> Iterable[Problem] | None:
    if job_type.name != "docker-proxy":
        return None
    extra = manifest.get("jobtype_extra") or {}
    path = extra.get("dockerfile_path") if isinstance(extra, Mapping) else None
    if isinstance(path, str) and ".." in PurePosixPath(path).parts:
        return [
            Problem(
                "jobtype_extra.dockerfile_path",
                f"'{path}' leaves the job directory; use a path in it",
            )
        ]
    return []
