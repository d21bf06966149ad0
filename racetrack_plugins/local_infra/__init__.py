"""The ``local`` infrastructure target: jobs run as supervised processes on this machine.

It needs no container engine, so it is the embedded default. It accepts process recipes: a
job type takes part by offering a ``ProcessRecipe`` (``racetrack_core.recipes``); see
``docs/infrastructure/local.md``.
"""

from __future__ import annotations

from racetrack_core import hookimpl
from racetrack_core.recipes import ArtifactKind
from racetrack_core.registry import InfrastructureRegistrar
from racetrack_plugins.local_infra.driver import LocalDriver
from racetrack_plugins.local_infra.review import review
from racetrack_plugins.local_infra.settings import LocalSettings

__all__ = ["LocalDriver", "LocalSettings"]

DESCRIPTION = (
    "Jobs as supervised processes on this machine, listening on 127.0.0.1 "
    "(no containers; restarted when they crash)"
)


@hookimpl
def register_infrastructure_targets(registry: InfrastructureRegistrar) -> None:
    """Register the ``local`` target, whose driver is a ``LocalDriver``."""
    registry.register(
        "local",
        LocalDriver,
        accepts={ArtifactKind.PROCESS},
        description=DESCRIPTION,
        review=review,
    )
