"""The Docker target's settings: ``targets: {docker: {...}}`` in the server's ``config.yaml``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from racetrack_core.errors import RacetrackError
from racetrack_core.images import BuilderSettings
from racetrack_core.quantities import memory_bytes, millicores

WHERE = "targets.docker"


@dataclass(frozen=True)
class DockerSettings:
    """How the Docker target runs its jobs.

    ``base_url``: the engine's socket (None: ``DOCKER_HOST`` or the default socket).
    ``restart_policy``: Docker's restart policy for job containers (``unless-stopped`` brings a
    crashed job back; a container is reported as crash-looping after ``crash_limit`` restarts).
    ``drain_seconds`` and ``stop_grace_seconds``: as on the local target.
    ``memory_default``/``memory_cap`` and ``cpu_default``/``cpu_cap``: a job's limits when its
    manifest's ``resources`` leave them out, and the most it may ask for.
    ``stop_on_close``: stop the job containers when the server stops (default: they keep
    running and a restarted server adopts them).
    ``build``: the image builder's settings (``racetrack_core.images.BuilderSettings``).
    """

    base_url: str | None = None
    restart_policy: str = "unless-stopped"
    crash_limit: int = 3
    drain_seconds: float = 1.0
    stop_grace_seconds: float = 5.0
    memory_default: int = 512 * 1024**2
    memory_cap: int = 4 * 1024**3
    cpu_default: float = 1.0
    cpu_cap: float = 4.0
    stop_on_close: bool = False
    build: BuilderSettings = field(default_factory=BuilderSettings)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> DockerSettings:
        """Settings from a mapping; an unknown name or a wrong type names the setting."""
        kinds: dict[str, type | tuple[type, ...]] = {
            "base_url": str,
            "restart_policy": str,
            "crash_limit": int,
            "drain_seconds": (int, float),
            "stop_grace_seconds": (int, float),
            "memory_default": (int, str),
            "memory_cap": (int, str),
            "cpu_default": (int, float),
            "cpu_cap": (int, float),
            "stop_on_close": bool,
        }
        chosen: dict[str, Any] = {}
        for name, value in values.items():
            if name == "build":
                if not isinstance(value, Mapping):
                    raise RacetrackError(f"config.yaml, {WHERE}.build: give a mapping")
                chosen["build"] = BuilderSettings.from_mapping(value, f"{WHERE}.build")
                continue
            if name not in kinds:
                raise RacetrackError(
                    f"config.yaml, {WHERE}: unknown setting {name!r}. Known: "
                    f"{', '.join([*kinds, 'build'])}"
                )
            if not isinstance(value, kinds[name]) or (
                isinstance(value, bool) and kinds[name] is not bool
            ):
                raise RacetrackError(f"config.yaml, {WHERE}.{name}: {value!r} is not a valid value")
            if name.startswith("memory") and isinstance(value, int | str):
                value = memory_bytes(value, f"config.yaml, {WHERE}.{name}")
            chosen[name] = value
        return cls(**chosen)

    def limits(self, resources: Mapping[str, Any] | None) -> tuple[int, float]:
        """Memory (bytes) and CPUs for a manifest's ``resources``: its maximum (else its
        minimum, else the default), capped. DeployError-free: the schema checked the units."""
        resources = resources or {}
        memory = resources.get("memory_max") or resources.get("memory_min")
        cpu = resources.get("cpu_max") or resources.get("cpu_min")
        where = "manifest field 'resources'"
        memory_value = memory_bytes(memory, where) if memory is not None else self.memory_default
        cpu_value = millicores(cpu, where) / 1000 if cpu is not None else self.cpu_default
        return min(memory_value, self.memory_cap), min(cpu_value, self.cpu_cap)
