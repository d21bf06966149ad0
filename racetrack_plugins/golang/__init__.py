"""The ``golang`` job type: a Go ``Perform`` function becomes an HTTP service."""

from __future__ import annotations

from typing import Any

from racetrack_core import hookimpl
from racetrack_core.registry import JobTypeRegistrar

VERSION = "1.0.0"

EXTRA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "gomod": {
            "type": "string",
            "pattern": r"^(?!/)(.*/)?go\.mod$",
            "x-hint": "a relative path to a go.mod file",
            "description": "go.mod of the job, relative to the job directory (default go.mod).",
        },
    },
}


@hookimpl
def register_job_types(registry: JobTypeRegistrar) -> None:
    registry.register(
        "golang",
        VERSION,
        extra_schema=EXTRA_SCHEMA,
        description="A Go function `Perform(map[string]interface{}) (interface{}, error)`.",
    )
