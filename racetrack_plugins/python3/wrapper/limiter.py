"""``max_concurrency``: how many calls a job serves at once; the others wait their turn.

As in the original wrapper, a call beyond ``max_concurrency`` waits in a queue and runs when a
running call finishes, first come first served. ``max_concurrency_queue`` bounds that queue: a
call that finds it full is refused with 429 at once. Without ``max_concurrency`` nothing waits.
"""

from __future__ import annotations

import asyncio

from .errors import TooManyCalls


class CallLimiter:
    """Admits ``limit`` calls at once; queues up to ``queue`` more (unbounded when ``None``).

    Used on the event loop only, so the counters need no lock; ``asyncio.Semaphore`` wakes the
    waiting calls in the order they came.
    """

    def __init__(self, limit: int | None, queue: int | None = None) -> None:
        self.limit = limit
        self.queue = queue
        #: Calls admitted: running or waiting for a slot.
        self.active = 0
        self._slots = asyncio.Semaphore(limit) if limit is not None else None

    @property
    def running(self) -> int:
        """Calls holding a slot now."""
        if self.limit is None:
            return self.active
        return min(self.active, self.limit)

    @property
    def waiting(self) -> int:
        """Calls in the queue now."""
        return self.active - self.running

    async def acquire(self) -> None:
        """Wait for a slot; raise ``TooManyCalls`` (429) if the queue is full."""
        if self._slots is None or self.limit is None:
            self.active += 1
            return
        if self.queue is not None and self.active - self.limit >= self.queue:
            raise TooManyCalls(
                f"the job serves {self.limit} calls at once (max_concurrency) and "
                f"{self.queue} more are waiting (max_concurrency_queue); retry later"
            )
        self.active += 1
        try:
            await self._slots.acquire()
        except BaseException:  # cancelled while waiting: the client went away
            self.active -= 1
            raise

    def release(self) -> None:
        self.active -= 1
        if self._slots is not None:
            self._slots.release()
