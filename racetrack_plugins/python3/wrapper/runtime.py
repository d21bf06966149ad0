"""The job's instance, made in a background thread so that the server answers ``/live`` at once.

Until ``__init__`` has finished, calls are refused (503) and the interface is the one read from
the class; afterwards it is the instance's, with its auxiliary and static endpoints.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from .entrypoint import JobInterface, describe_class, describe_instance
from .errors import NotReady

logger = logging.getLogger("racetrack.job")


class JobRuntime:
    """One job's state: its class, then its instance or the error that its ``__init__`` raised."""

    def __init__(self, entrypoint_class: type, job_dir: Path) -> None:
        self.entrypoint_class = entrypoint_class
        self.job_dir = job_dir
        self.interface: JobInterface = describe_class(entrypoint_class)
        self.instance: object | None = None
        self.error: str | None = None
        self._thread: threading.Thread | None = None

    @property
    def ready(self) -> bool:
        return self.instance is not None

    @property
    def live(self) -> bool:
        return self.error is None

    def start(self) -> None:
        """Run ``__init__`` in a daemon thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.initialize, name="job-init", daemon=True)
            self._thread.start()

    def initialize(self) -> None:
        """Make the instance and read its interface; keep the error if either fails."""
        name = self.entrypoint_class.__name__
        try:
            instance = self.entrypoint_class()
            interface = describe_instance(instance, self.job_dir)
        except Exception as error:
            logger.exception("initializing the job class %s failed", name)
            self.error = f"{name}.__init__ failed: {type(error).__name__}: {error}"
            return
        self.interface = interface
        self.instance = instance
        logger.info("job class %s is ready", name)

    def require_ready(self) -> JobInterface:
        """The instance's interface, or ``NotReady`` while there is none."""
        if self.error is not None:
            raise NotReady(f"the job cannot serve calls: {self.error}")
        if self.instance is None:
            raise NotReady("the job is starting: its __init__ has not finished yet; retry later")
        return self.interface
