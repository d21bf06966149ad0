"""The ``local`` infrastructure target: jobs run as supervised processes on this machine.

It needs no container engine, so it is the embedded default. A job type takes part by giving
its job types a ``LocalRecipe`` (``racetrack_core.infrastructure``); see
``docs/infrastructure/local.md``.
"""

from __future__ import annotations

from racetrack_core import hookimpl
from racetrack_core.registry import InfrastructureRegistrar
from racetrack_plugins.local_infra.driver import LocalDriver
from racetrack_plugins.local_infra.settings import LocalSettings

__all__ = ["LocalDriver", "LocalSettings"]

DESCRIPTION = (
    "Jobs as supervised processes on this machine, listening on 127.0.0.1 "
    "(no containers; restarted when they crash)"
)


@hookimpl
def register_infrastructure_targets(registry: InfrastructureRegistrar) -> None:
    """Register the ``local`` target, whose driver is a ``LocalDriver``."""
    registry.register("local", LocalDriver, description=DESCRIPTION)
