"""Keeping replicas running: the crash policy of one replica and the thread that applies it.

A replica whose process ends without being asked to is restarted after a delay that doubles
with each crash (``restart_backoff_seconds``, then twice that, and so on up to
``restart_backoff_max_seconds``). Crashes older than ``crash_window_seconds`` are forgotten, so
a replica that ran well for a while starts again from the shortest delay; the
``crash_limit``-th crash within the window makes the driver give up on it.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from racetrack_core.infrastructure import JobSpec, Replica
from racetrack_plugins.local_infra.logfiles import NOTE_PREFIX, JobLog
from racetrack_plugins.local_infra.processes import JobProcess
from racetrack_plugins.local_infra.settings import LocalSettings

logger = logging.getLogger(__name__)

#: How many lines of a job's output explain why it failed.
ERROR_TAIL_LINES = 20


@dataclass
class Supervised:
    """A replica the driver keeps running, and what happened to it so far.

    ``process`` is None while a restart is pending and after the driver gave up (``error``).
    ``served`` turns true once the process was seen accepting connections.
    """

    spec: JobSpec
    replica: Replica
    port: int
    log: JobLog
    command: tuple[str, ...] = ()
    process: JobProcess | None = None
    crashes: deque[float] = field(default_factory=deque)
    restarts: int = 0
    restart_at: float | None = None
    last_exit: str | None = None
    error: str | None = None
    served: bool = False

    def crashed(self, how: str, now: float, settings: LocalSettings) -> None:
        """Record that the process ended (``how``, such as "exited with code 3").

        Schedule a restart after the backoff delay, or give up (``error``) when this was the
        ``crash_limit``-th crash within the window. Either way, say so in the job's log.
        """
        self.process = None
        self.served = False
        self.last_exit = how
        self.crashes.append(now)
        while self.crashes and now - self.crashes[0] > settings.crash_window_seconds:
            self.crashes.popleft()
        if len(self.crashes) < settings.crash_limit:
            delay = settings.backoff(len(self.crashes))
            self.restart_at = now + delay
            self.log.note(f"{self.replica.id} {how}; restarting it in {delay:g} s")
            return
        self.restart_at = None
        crashes = f"{settings.crash_limit} times within {settings.crash_window_seconds:g} s"
        self.log.note(f"{self.replica.id} {how}; it crashed {crashes}, so it stays down")
        output = self.log.tail(ERROR_TAIL_LINES)
        last = last_printed(output)
        printed = f" after printing: {last}" if last else " without printing anything"
        # The first line is what a deployment's error shows: it carries the last line printed.
        self.error = (
            f"the job crashed {crashes} and is no longer restarted. The last time, it {how}"
            f"{printed}\nLast lines of its output:\n{output}"
        )

    def restart_due(self, now: float) -> bool:
        """Whether a pending restart should happen now."""
        return self.process is None and self.restart_at is not None and now >= self.restart_at


def last_printed(output: str) -> str:
    """The last non-blank line of ``output`` that the job wrote (not a note of the driver's)."""
    for line in reversed(output.splitlines()):
        if line.strip() and not line.startswith(NOTE_PREFIX):
            return line.strip()
    return ""


class Supervisor:
    """A daemon thread that calls ``tick`` every ``interval`` seconds until stopped.

    An exception from ``tick`` is logged and does not end the thread.
    """

    def __init__(self, tick: Callable[[], None], interval: float) -> None:
        self._tick = tick
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="racetrack-local-supervisor", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for its last tick to end."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self._tick()
            except Exception:
                logger.exception("the local target's supervisor failed; it carries on")
