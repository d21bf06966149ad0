"""The ``docker`` infrastructure target: jobs as containers on a Docker engine.

It accepts image recipes: a job type takes part by offering an ``ImageRecipe``
(``racetrack_core.recipes``), which the one image builder (``racetrack_core.images``) renders
and builds with BuildKit. See ``docs/infrastructure/docker.md``.
"""

from __future__ import annotations

from racetrack_core import hookimpl
from racetrack_core.recipes import ArtifactKind
from racetrack_core.registry import InfrastructureRegistrar
from racetrack_plugins.docker_infra.driver import DockerDriver
from racetrack_plugins.docker_infra.settings import DockerSettings

__all__ = ["DockerDriver", "DockerSettings"]

DESCRIPTION = (
    "Jobs as containers on a Docker engine (host networking, listening on 127.0.0.1; "
    "images built with BuildKit; restarted when they crash)"
)


@hookimpl
def register_infrastructure_targets(registry: InfrastructureRegistrar) -> None:
    """Register the ``docker`` target, whose driver is a ``DockerDriver``."""
    registry.register("docker", DockerDriver, accepts={ArtifactKind.IMAGE}, description=DESCRIPTION)
