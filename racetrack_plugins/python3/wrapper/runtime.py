"""The job's instance, made in a background thread so that the server answers ``/live`` at once.

Until ``__init__`` has finished, calls are refused (503) and the interface is the one read from
the class; afterwards it is the instance's, with its auxiliary and static endpoints, its webview
app, and its ``request_context``.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from starlette.types import ASGIApp

from .context import RequestContext
from .entrypoint import JobInterface, describe_class, describe_instance
from .errors import NotReady
from .webview import make_webview

logger = logging.getLogger("racetrack.job")


class JobRuntime:
    """One job's state: its class, then its instance or the error that its ``__init__`` raised."""

    def __init__(
        self,
        entrypoint_class: type,
        job_dir: Path,
        *,
        webview_base_url: str = "/api/v1/webview",
        max_body_bytes: int = 16 * 1024 * 1024,
        instance: object | None = None,
    ) -> None:
        self.entrypoint_class = entrypoint_class
        self.job_dir = job_dir
        self.webview_base_url = webview_base_url
        self.max_body_bytes = max_body_bytes
        self.interface: JobInterface = describe_class(entrypoint_class)
        self.instance: object | None = None
        self.webview: ASGIApp | None = None
        self.context = RequestContext()
        self.error: str | None = None
        self._thread: threading.Thread | None = None
        #: An instance made by the caller (``standalone.serve_job_instance``): no ``__init__``.
        self._given = instance

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
            instance = self._given if self._given is not None else self.entrypoint_class()
            interface = describe_instance(instance, self.job_dir)
            webview = make_webview(instance, self.webview_base_url, self.max_body_bytes)
            self.context.install(instance)
        except Exception as error:
            logger.exception("initializing the job class %s failed", name)
            self.error = f"{name}.__init__ failed: {type(error).__name__}: {error}"
            return
        self.interface = interface
        self.webview = webview
        self.instance = instance
        logger.info("job class %s is ready", name)

    def require_ready(self) -> JobInterface:
        """The instance's interface, or ``NotReady`` while there is none."""
        if self.error is not None:
            raise NotReady(f"the job cannot serve calls: {self.error}")
        if self.instance is None:
            raise NotReady("the job is starting: its __init__ has not finished yet; retry later")
        return self.interface
