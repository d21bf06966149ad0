"""The pool of keep-alive connections to jobs: reuse, a cap, a connect timeout, a sweeper.

There is no timer per call: :meth:`JobPool.sweep`, called about once a second, fails an
exchange whose job stayed silent for ``read_timeout`` and closes connections idle for
``idle_timeout`` (below the jobs' own keep-alive timeout, so that Pub never sends on a
connection the job is closing).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from urllib.parse import urlsplit

from racetrack_core.pub.front.upstream import JobConnection, Key


class ConnectTimeout(Exception):
    """The job did not accept the connection within ``connect_timeout``."""


class JobPool:
    """Idle keep-alive connections per job address, at most ``max_connections`` open."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        connect_timeout: float,
        read_timeout: float,
        idle_timeout: float,
        max_connections: int,
    ) -> None:
        self.loop = loop
        self._connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._idle_timeout = idle_timeout
        self._max = max_connections
        self._idle: dict[Key, list[tuple[float, JobConnection]]] = {}
        self._open: set[JobConnection] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._tls_context: ssl.SSLContext | None = None
        self._addresses: dict[str, tuple[str, int, str, bool]] = {}

    def address(self, base_url: str) -> tuple[str, int, str, bool]:
        """Host, port, ``Host`` header and TLS of a job's base URL (from Lifecycle), cached."""
        found = self._addresses.get(base_url)
        if found is None:
            parts = urlsplit(base_url)
            host = parts.hostname or "127.0.0.1"
            port = parts.port or (443 if parts.scheme == "https" else 80)
            if len(self._addresses) > 10_000:
                self._addresses.clear()
            tls = parts.scheme == "https"
            found = self._addresses[base_url] = (host, port, parts.netloc, tls)
        return found

    async def acquire(self, host: str, port: int, tls: bool = False) -> JobConnection:
        """An idle connection to ``host:port`` (over TLS if ``tls``), or a new one.

        Raises :class:`ConnectTimeout`, or the ``OSError`` of a refused connection.
        """
        key = (host, port, tls)
        while True:
            idle = self._idle.get(key)
            now = self.loop.time()
            while idle:
                since, connection = idle.pop()
                if connection.closed:
                    continue
                if now - since > self._idle_timeout:
                    connection.close()  # the sweeper has not come by yet; the job may close it
                    continue
                return connection
            if not self._max or len(self._open) < self._max or self._close_one_idle():
                break
            waiter = self.loop.create_future()
            self._waiters.append(waiter)
            await waiter
        try:
            _, protocol = await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: JobConnection(self, key), host, port, ssl=self._tls() if tls else None
                ),
                self._connect_timeout,
            )
        except TimeoutError:
            raise ConnectTimeout(f"no connection to {host}:{port}") from None
        connection = protocol
        self._open.add(connection)
        return connection

    def _tls(self) -> ssl.SSLContext:
        if self._tls_context is None:
            self._tls_context = ssl.create_default_context()
        return self._tls_context

    def release(self, connection: JobConnection, keep: bool) -> None:
        """Take a connection back after an answer; ``keep`` it for reuse, or close it."""
        if keep and not connection.closed:
            self._idle.setdefault(connection.key, []).append((self.loop.time(), connection))
            self._wake()
        else:
            connection.close()

    def forget(self, connection: JobConnection) -> None:
        """A connection closed (its idle entry, if any, goes at the next acquire or sweep)."""
        if connection in self._open:
            self._open.discard(connection)
            self._wake()

    def sweep(self) -> None:
        """Fail silent exchanges with a timeout and close connections idle too long."""
        now = self.loop.time()
        for connection in list(self._open):
            if (
                connection.sink is not None
                and not connection.reading_paused
                and now - connection.last_active > self.read_timeout
            ):
                connection.timed_out()
        for key, idle in list(self._idle.items()):
            kept = []
            for since, connection in idle:
                if connection.closed:
                    continue
                if now - since > self._idle_timeout:
                    connection.close()
                else:
                    kept.append((since, connection))
            if kept:
                self._idle[key] = kept
            else:
                del self._idle[key]

    def close(self) -> None:
        """Close every connection."""
        for connection in list(self._open):
            connection.close()
        self._idle.clear()

    def _close_one_idle(self) -> bool:
        for idle in self._idle.values():
            while idle:
                _, connection = idle.pop(0)
                if not connection.closed:
                    connection.close()
                    return True
        return False

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
