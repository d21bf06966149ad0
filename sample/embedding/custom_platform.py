"""A custom platform that embeds Racetrack and adds a job type written in its own code.

Acme runs batch jobs on Racetrack. Instead of publishing a plugin distribution, its platform
code registers the ``acme-batch`` job type (and an API route of its own) on a plugin manager
of its own, next to the plugins installed in the environment, validates manifests with
Racetrack's core, and builds the Lifecycle and Pub apps with their factories::

    python sample/embedding/custom_platform.py [MANIFEST]

MANIFEST is a job directory or a manifest file (default: the ``job.yaml`` beside this script).
Exit code 0 prints the validated manifest; 1 prints each problem on stderr.
``create_apps(home)`` returns Acme's Lifecycle and Pub apps, ready for any ASGI server.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import racetrack_core
from racetrack_core import hookimpl
from racetrack_core.errors import RacetrackError
from racetrack_core.lifecycle import create_app as create_lifecycle_app
from racetrack_core.manifest import Problem, dump_yaml, load_manifest
from racetrack_core.pub import PubApp, PubConfig
from racetrack_core.pub import create_app as create_pub_app
from racetrack_core.registry import JobType, JobTypeRegistrar
from racetrack_core.schema import validate_manifest
from racetrack_core.settings import Settings

OWNER_DOMAIN = "@acme.example"


class AcmeBatchPlugin:
    """Acme's own plugin: the ``acme-batch`` job type and one rule of the house."""

    @hookimpl
    def register_job_types(self, registry: JobTypeRegistrar) -> None:
        registry.register(
            "acme-batch",
            "1.0.0",
            extra_schema={
                "type": "object",
                "additionalProperties": False,
                "required": ["queue", "command"],
                "properties": {
                    "queue": {"type": "string", "enum": ["nightly", "hourly"]},
                    "command": {"type": "string", "minLength": 1},
                },
            },
            description="A command run from one of Acme's batch queues.",
        )

    @hookimpl
    def validate_manifest(
        self, manifest: Mapping[str, Any], job_type: JobType
    ) -> Iterable[Problem] | None:
        if job_type.name != "acme-batch":
            return None
        owner = str(manifest.get("owner_email", ""))
        if not owner.endswith(OWNER_DOMAIN):
            return [Problem("owner_email", f"'{owner}' is not an Acme address ({OWNER_DOMAIN})")]
        return None

    @hookimpl
    def api_routes(self) -> list[Route]:
        # Served at /api/v1/plugins/acme/queues, behind Racetrack's token check.
        return [Route("/queues", list_queues, methods=["GET"])]


async def list_queues(request: Request) -> JSONResponse:
    return JSONResponse({"queues": ["nightly", "hourly"]})


def build_plugins() -> racetrack_core.PluginManager:
    """Racetrack's plugins as Acme's platform uses them: the installed ones plus its own."""
    plugins = racetrack_core.PluginManager()
    plugins.register(AcmeBatchPlugin(), "acme")
    return plugins.load()


def create_apps(home: Path) -> tuple[Starlette, PubApp]:
    """Acme's Lifecycle and Pub apps, with Racetrack's settings read from the environment."""
    settings = Settings.load({"home": str(home)})
    lifecycle = create_lifecycle_app(settings, build_plugins())
    pub = create_pub_app(PubConfig(lifecycle_url=settings.internal_lifecycle_url))
    return lifecycle, pub


def main(argv: Sequence[str]) -> int:
    path = Path(argv[0]) if argv else Path(__file__).with_name("job.yaml")
    try:
        plugins = build_plugins()
        print(f"plugins: {', '.join(plugins.names())}")
        print(f"job types: {', '.join(job_type.ref for job_type in plugins.job_types)}")
        result = validate_manifest(load_manifest(path), plugins)
    except RacetrackError as exc:
        for problem in getattr(exc, "problems", None) or [str(exc)]:
            print(f"invalid: {problem}", file=sys.stderr)
        return 1
    print(f"valid: {result.data['name']} {result.data['version']} (job type {result.job_type.ref})")
    print(dump_yaml(result.data), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
