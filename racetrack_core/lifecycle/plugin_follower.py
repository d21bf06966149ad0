"""Keeps a running Lifecycle's plugins those the database records, as other replicas change it.

Every ``plugin_sync_interval`` seconds the follower reads what the ``installed_plugin`` table
holds; when that changed since it last looked (a staff member installed, upgraded or
uninstalled a plugin through another replica), it runs the same sync as a start does.
"""

from __future__ import annotations

import logging
import threading

from racetrack_core.lifecycle import plugin_changes, plugin_records
from racetrack_core.lifecycle.service import LifecycleService

log = logging.getLogger("racetrack.lifecycle.plugins")


class PluginFollower:
    """A daemon thread that re-syncs the plugins when the recorded set changes."""

    def __init__(self, service: LifecycleService) -> None:
        self._service = service
        self._interval = service.settings.plugin_sync_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen = plugin_records.fingerprint(service.engine)

    def start(self) -> None:
        if self._interval <= 0:
            return
        self._thread = threading.Thread(
            target=self._run, name="racetrack-plugin-follower", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                current = plugin_records.fingerprint(self._service.engine)
                if current != self._seen:
                    plugin_changes.sync_at_start(self._service)
                    self._seen = current
            except Exception:  # the next round tries again; the error is in the log
                log.exception("following the installed plugins failed")
