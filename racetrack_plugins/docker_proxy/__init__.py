"""The ``docker-proxy`` job type: any HTTP server built from the job's own Dockerfile."""

from __future__ import annotations

from typing import Any

from racetrack_core import hookimpl
from racetrack_core.registry import JobTypeRegistrar

VERSION = "1.0.0"

EXTRA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "dockerfile_path": {
            "type": "string",
            "pattern": r"^[^/]",
            "x-hint": "a relative path, like Dockerfile",
            "description": "The job's Dockerfile, relative to the job directory.",
        },
        "user_module_port": {
            "type": "integer",
            "minimum": 1,
            "maximum": 65535,
            "description": "Port the user's server listens on inside its container.",
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
    )
