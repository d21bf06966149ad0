"""The local target's settings: ``targets: {local: {...}}`` in the server's ``config.yaml``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from racetrack_core.errors import RacetrackError


@dataclass(frozen=True)
class LocalSettings:
    """How the local target stops, restarts and logs its jobs.

    ``drain_seconds``: how long ``retire`` lets calls in flight finish before stopping.
    ``stop_grace_seconds``: how long a job has to exit after SIGTERM before SIGKILL.
    ``restart_backoff_seconds`` and ``restart_backoff_max_seconds``: the first delay before
    restarting a crashed job, doubled on each further crash, up to the maximum.
    ``crash_limit`` crashes within ``crash_window_seconds`` make the driver give up (ERROR).
    ``log_max_bytes``: a job's log is rotated (one old file kept) once it grows past this.
    ``supervise_interval_seconds``: how often the supervisor looks at its processes.
    """

    drain_seconds: float = 1.0
    stop_grace_seconds: float = 5.0
    restart_backoff_seconds: float = 1.0
    restart_backoff_max_seconds: float = 30.0
    crash_limit: int = 5
    crash_window_seconds: float = 300.0
    log_max_bytes: int = 10 * 1024 * 1024
    supervise_interval_seconds: float = 0.2

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> LocalSettings:
        """Settings from a mapping; reject an unknown name or a value that is not a number."""
        known = {field.name: field for field in fields(cls)}
        chosen: dict[str, Any] = {}
        for name, value in values.items():
            if name not in known:
                raise RacetrackError(
                    f"config.yaml, targets.local: unknown setting {name!r}. "
                    f"Known: {', '.join(known)}"
                )
            kind = int if known[name].type == "int" else float
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise RacetrackError(
                    f"config.yaml, targets.local: setting {name!r} is {value!r}; "
                    "give a number of zero or more"
                )
            chosen[name] = kind(value)
        return cls(**chosen)

    def backoff(self, crashes: int) -> float:
        """The delay before restarting after the ``crashes``-th recent crash (1, 2, 3, ...)."""
        delay = self.restart_backoff_seconds * 2 ** max(crashes - 1, 0)
        return float(min(delay, self.restart_backoff_max_seconds))
