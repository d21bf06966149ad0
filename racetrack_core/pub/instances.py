"""Which instances of a replicated job are ready, and which one takes the next call.

A job that runs as several instances (the manifest's ``replicas``) reaches Pub as one grant
that lists every instance's base URL (Lifecycle's ``replica_internal_names``): a Docker
container's port, or a Kubernetes pod's own address (the Kubernetes target lists a job's serving
pods, so that calls are spread per call rather than per kept-alive connection to the job's
Service). Each call goes to the next *ready* instance in turn. An instance leaves the rotation

- at once, when it refuses a connection or does not accept one within the connect timeout (the
  call is then sent to the next ready instance: nothing of it had reached the job), or
- when its ``GET /ready`` fails, answers anything but 200, or stays silent for
  ``instance_probe_timeout``: a prober checks every instance of the replicated jobs called in the
  last ``FORGET_AFTER`` seconds, every ``instance_probe_interval`` seconds,

and comes back when the prober sees its ``/ready`` answer 200 again. When no instance is ready,
calls still go round all of them (one may have come back since the last probe). Jobs with a
single instance are never probed: Lifecycle's watcher and the one retry of a refused connection
(:func:`racetrack_core.pub.jobcalls.ask_again`) cover them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection

import aiohttp

logger = logging.getLogger("racetrack.pub")

#: An instance list that no grant named for this long is no longer probed.
FORGET_AFTER = 60.0


class InstanceRotation:
    """The ready instances of replicated jobs, and whose turn it is (one per Pub process)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        probe_interval: float,
        probe_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._interval = probe_interval
        self._timeout = aiohttp.ClientTimeout(total=probe_timeout)
        self._clock = clock
        #: Instances out of the rotation, with the reason.
        self._down: dict[str, str] = {}
        self._turns: dict[tuple[str, str], int] = {}
        #: Each replicated job's instance list, and when a grant last named it.
        self._seen: dict[tuple[str, ...], float] = {}
        self._prober: asyncio.Task[None] | None = None

    def choose(
        self, job: tuple[str, str], urls: tuple[str, ...], avoid: Collection[str] = ()
    ) -> str | None:
        """The instance of ``job`` (name, version) whose turn it is: the next ready one of
        ``urls`` not in ``avoid`` (any not in ``avoid`` when none is ready), or None when every
        instance is in ``avoid``."""
        self._note(urls)
        candidates = [url for url in urls if url not in avoid] if avoid else list(urls)
        if not candidates:
            return None
        ready = [url for url in candidates if url not in self._down] or candidates
        turn = self._turns[job] = (self._turns.get(job, -1) + 1) % len(ready)
        return ready[turn]

    def take_out(self, url: str, reason: str) -> None:
        """Leave ``url`` out of the rotation until its ``/ready`` answers 200 again."""
        if url not in self._down:
            logger.warning("job instance %s left the rotation: %s", url, reason)
        self._down[url] = reason

    def is_ready(self, url: str) -> bool:
        """Whether ``url`` is in the rotation (as far as this Pub knows)."""
        return url not in self._down

    async def close(self) -> None:
        """Stop probing."""
        prober, self._prober = self._prober, None
        if prober is not None:
            prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await prober

    def _note(self, urls: tuple[str, ...]) -> None:
        self._seen[urls] = self._clock()
        if self._prober is None or self._prober.done():
            self._prober = asyncio.ensure_future(self._probe_forever())

    async def _probe_forever(self) -> None:
        while self._seen:
            await asyncio.sleep(self._interval)
            try:
                await self.probe_all()
            except Exception:  # a bug here must not stop the rotation for good
                logger.exception("probing job instances failed")

    async def probe_all(self) -> None:
        """Probe every instance of the replicated jobs called lately; forget the others."""
        now = self._clock()
        for urls, seen in list(self._seen.items()):
            if now - seen > FORGET_AFTER:
                del self._seen[urls]
        watched = {url for urls in self._seen for url in urls}
        for url in list(self._down):
            if url not in watched:
                del self._down[url]
        answers = await asyncio.gather(*(self._probe(url) for url in watched))
        for url, problem in zip(watched, answers, strict=True):
            if problem is not None:
                self.take_out(url, problem)
            elif self._down.pop(url, None) is not None:
                logger.warning("job instance %s is ready again: back in the rotation", url)

    async def _probe(self, url: str) -> str | None:
        """None when ``url``'s ``/ready`` answers 200; otherwise what is wrong."""
        try:
            async with self._session.get(
                f"{url}/ready", timeout=self._timeout, allow_redirects=False
            ) as answer:
                await answer.read()
                status = answer.status
        except TimeoutError:
            return f"/ready did not answer within {self._timeout.total:g} s"
        except (aiohttp.ClientError, OSError) as error:
            return f"/ready did not answer ({type(error).__name__})"
        return None if status == 200 else f"/ready answered {status}"
