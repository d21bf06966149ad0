"""The ``python3`` job type: a Python class with a ``perform`` method becomes an HTTP service."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any

from racetrack_core import hookimpl
from racetrack_core.manifest import Problem
from racetrack_core.recipes import Recipes
from racetrack_core.registry import JobType, JobTypeRegistrar
from racetrack_plugins.python3.base_images import register_base_images as register_base_images
from racetrack_plugins.python3.image import DOCKERFILE_TEMPLATE, Python3ImageRecipe
from racetrack_plugins.python3.options import review_options
from racetrack_plugins.python3.process import Python3ProcessRecipe

__all__ = ["DOCKERFILE_TEMPLATE", "EXTRA_SCHEMA", "RECIPES", "VERSION", "register_base_images"]

VERSION = "1.0.0"
#: A process recipe for the local target, an image recipe for container targets.
RECIPES = Recipes(process=Python3ProcessRecipe(), image=Python3ImageRecipe())

EXTRA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["entrypoint_path"],
    "properties": {
        "entrypoint_path": {
            "type": "string",
            "pattern": r"^[^/].*\.py$",
            "x-hint": "a relative path to a .py file, like entrypoint.py",
            "description": "Python file, relative to the job directory, holding the class.",
        },
        "entrypoint_class": {
            "type": "string",
            "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$",
            "x-hint": "a Python class name, like JobEntrypoint",
            "description": "Class whose perform method serves calls; found by itself if the "
            "file has one class with a perform method.",
        },
        "requirements_path": {
            "type": "string",
            "pattern": r"^[^/]",
            "x-hint": "a relative path, like requirements.txt",
            "description": "pip requirements file, relative to the job directory.",
        },
        "python_version": {
            "type": "string",
            "pattern": r"^3\.[0-9]+(\.[0-9]+)?$",
            "x-hint": "a Python version in quotes, like '3.11' or '3.11.2'",
            "description": "Python version the job runs on; it must be installed where the job "
            "runs (local: an interpreter on the server; docker: the base image).",
        },
        "debian_version": {
            "type": "string",
            "pattern": r"^[a-z0-9][a-z0-9.-]*$",
            "x-hint": "a Debian flavour of the python image, like slim-bookworm",
            "description": "Debian flavour of the base image, python:<python_version>-<this> "
            "(default slim); container targets only.",
        },
        "debian_backports": {
            "type": "boolean",
            "description": "The original's switch for Debian backports; accepted, not supported.",
        },
        "check_requirements": {
            "type": "boolean",
            "description": "Whether the job's requirements are checked for conflicts; they "
            "always are here.",
        },
        "memray_profiler": {
            "type": "boolean",
            "description": "The original's memray switch; accepted, not supported.",
        },
        "home_page": {
            "type": "string",
            "pattern": r"^/",
            "x-hint": "a path starting with /, like /docs",
            "description": "Page that the job's root URL redirects to (default /docs).",
        },
        "max_concurrency": {
            "type": "integer",
            "minimum": 1,
            "description": "Calls running at once; more wait in a queue (max_concurrency_queue).",
        },
        "max_concurrency_queue": {
            "type": "integer",
            "minimum": 0,
            "description": "Calls that may wait beyond max_concurrency; more are refused with "
            "429 (0: refuse at once).",
        },
    },
}


@hookimpl
def register_job_types(registry: JobTypeRegistrar) -> None:
    registry.register(
        "python3",
        VERSION,
        extra_schema=EXTRA_SCHEMA,
        description="A Python class with a perform method, served over HTTP with Swagger docs.",
        recipes=RECIPES,
        # The original Racetrack's python3 job type 2.x: its wrapper contract is served
        # unchanged (tests/compat runs original-style jobs on both wrappers).
        original_versions="2.*",
    )


@hookimpl
def validate_manifest(
    manifest: Mapping[str, Any], job_type: JobType, target: str | None
) -> Iterable[Problem] | None:
    if job_type.name != "python3":
        return None
    extra = manifest.get("jobtype_extra") or {}
    problems = list(review_options(extra, target))
    for key in ("entrypoint_path", "requirements_path"):
        value = extra.get(key)
        if isinstance(value, str) and ".." in PurePosixPath(value).parts:
            problems.append(
                Problem(
                    f"jobtype_extra.{key}",
                    f"'{value}' leaves the job directory; use a path inside it",
                )
            )
    return problems
