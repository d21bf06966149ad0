"""The ``hello`` job type: a sample third-party Racetrack plugin.

It registers the job type ``hello`` in every version this release supports
(``JOB_TYPE_VERSIONS``), whose manifests carry a greeting::

    jobtype: hello:1.0.0
    jobtype_extra:
      greeting: Hello, world

A release keeps registering the versions that deployed jobs may still use, so that upgrading
the plugin never leaves a running job without its job type: add a version, drop one only when
no job runs on it any more.

The JSON-schema fragment checks the shape of ``jobtype_extra``; the ``validate_manifest`` hook
checks what a schema cannot say. Its recipes (``recipes.py``) let every target run it: a
process recipe for the ``local`` target and an image recipe for container targets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from racetrack_core import hookimpl
from racetrack_core.manifest import Problem
from racetrack_core.recipes import Recipes
from racetrack_core.registry import JobType, JobTypeRegistrar
from racetrack_hello_jobtype.recipes import HelloImageRecipe, HelloProcessRecipe

JOB_TYPE = "hello"
#: The job type versions this release registers, oldest first.
JOB_TYPE_VERSIONS = ("1.0.0",)

EXTRA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["greeting"],
    "properties": {
        "greeting": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "x-hint": "a short sentence, like 'Hello, world'",
            "description": "What the job answers every call with.",
        },
    },
}


@hookimpl
def register_job_types(registry: JobTypeRegistrar) -> None:
    recipes = Recipes(process=HelloProcessRecipe(), image=HelloImageRecipe())
    for version in JOB_TYPE_VERSIONS:
        registry.register(
            JOB_TYPE,
            version,
            extra_schema=EXTRA_SCHEMA,
            description="Answers every call with the manifest's greeting.",
            recipes=recipes,
        )


@hookimpl
def validate_manifest(manifest: Mapping[str, Any], job_type: JobType) -> Iterable[Problem] | None:
    if job_type.name != JOB_TYPE:
        return None
    greeting = manifest.get("jobtype_extra", {}).get("greeting", "")
    if isinstance(greeting, str) and not greeting.strip():
        return [Problem("jobtype_extra.greeting", "is blank; write a greeting, like 'Hello'")]
    return None
