"""The ``golang`` job type: a Go ``Perform`` function becomes an HTTP service.

The job author writes ``func Perform(input map[string]interface{}) (interface{}, error)`` in the
root package of a Go module; Racetrack builds it with a wrapper (``wrapper/``, Go standard
library only) that serves the runtime contract. ``gomod`` fits go.mod to the installed Go,
``build`` prepares and runs the build (``diagnosis`` explains a failed one), ``process`` is
the process recipe (local target), ``image`` the image recipe (container targets).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any

from racetrack_core import hookimpl
from racetrack_core.manifest import Problem
from racetrack_core.recipes import Recipes
from racetrack_core.registry import JobType, JobTypeRegistrar
from racetrack_plugins.golang.build import MISSING_GO, find_go
from racetrack_plugins.golang.image import GolangImageRecipe
from racetrack_plugins.golang.process import GolangProcessRecipe

VERSION = "1.0.0"
#: Targets that build golang jobs with the host's own ``go``.
HOST_GO_TARGETS = ("local",)

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
        recipes=Recipes(process=GolangProcessRecipe(), image=GolangImageRecipe()),
        docs_page=True,  # the wrapper's docs.go; the job's code is only Perform
    )


@hookimpl
def validate_manifest(manifest: Mapping[str, Any], job_type: JobType) -> Iterable[Problem] | None:
    if job_type.name != "golang":
        return None
    problems = []
    extra = manifest.get("jobtype_extra") or {}
    gomod = extra.get("gomod") if isinstance(extra, Mapping) else None
    if isinstance(gomod, str) and ".." in PurePosixPath(gomod).parts:
        problems.append(
            Problem("jobtype_extra.gomod", f"'{gomod}' leaves the job directory; use a path in it")
        )
    target = manifest.get("infrastructure_target")
    if (target is None or target in HOST_GO_TARGETS) and find_go() is None:
        problems.append(Problem("jobtype", MISSING_GO))
    return problems
