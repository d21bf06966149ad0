"""Reporting when each job version was last called, to Lifecycle, in batches.

Both of Pub's servers count every answered call in :class:`~racetrack_core.pub.metrics.Metrics`,
which keeps the time of each job version's last one. Every ``call_time_interval`` seconds the
reporter sends the times that moved since its last report in one request
(``POST /api/v1/job/call-times``, with the services' internal token), so that Lifecycle writes
the database once per batch, never once per call. Each Pub replica reports on its own;
Lifecycle keeps the latest time it hears of, so replicas need not agree on an order.

A report that fails is kept and sent again with the next one; the last report is sent when
Pub stops. Without an internal token (an embedded Pub with no Lifecycle to tell) nothing runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp

from racetrack_core.pub.config import PubConfig
from racetrack_core.pub.metrics import Metrics

logger = logging.getLogger("racetrack.pub")

#: Entries in one request; Lifecycle accepts up to 1000 (``call_time_routes.MAX_CALLS``).
BATCH = 500


class CallTimeReporter:
    """Sends the last call times that ``metrics`` holds to Lifecycle every few seconds."""

    def __init__(self, config: PubConfig, session: aiohttp.ClientSession, metrics: Metrics) -> None:
        self._url = config.lifecycle_url.rstrip("/") + "/api/v1/job/call-times"
        self._token = config.internal_token
        self._interval = config.call_time_interval
        self._timeout = aiohttp.ClientTimeout(total=config.lifecycle_timeout)
        self._session = session
        self._metrics = metrics
        self._reported: dict[tuple[str, str], float] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._token and self._interval > 0:
            self._task = asyncio.create_task(self._run(), name="pub-call-times")

    async def stop(self) -> None:
        """Stop reporting, after one last report of what is pending."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        await self.report()

    def pending(self) -> list[tuple[tuple[str, str], float]]:
        """The (job, version) times that moved since the last report Lifecycle accepted."""
        return [
            (key, when)
            for key, when in self._metrics.last_calls().items()
            if when > self._reported.get(key, 0.0)
        ]

    async def report(self) -> bool:
        """Send what is pending; False (and kept for the next report) when Lifecycle failed."""
        pending = self.pending()
        for start in range(0, len(pending), BATCH):
            batch = pending[start : start + BATCH]
            calls = [
                {"name": name, "version": version, "last_call_time": when}
                for (name, version), when in batch
            ]
            if not await self._send(calls):
                return False
            self._reported.update(batch)
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.report()

    async def _send(self, calls: list[dict[str, object]]) -> bool:
        try:
            async with self._session.post(
                self._url,
                json={"calls": calls},
                headers={"X-Racetrack-Auth": self._token or ""},
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            logger.warning("could not report call times to Lifecycle: %s", type(error).__name__)
            return False
        if status != 200:
            logger.warning("Lifecycle refused the call times report with status %s", status)
            return False
        return True
