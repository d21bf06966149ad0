"""``max_concurrency``: how many calls a job serves at once; one more is refused with 429."""

from __future__ import annotations

from .errors import TooManyCalls


class CallLimiter:
    """Refuses a call when ``limit`` calls are already running (no queue: the caller retries).

    Counted on the event loop only, so the check and the increment need no lock.
    """

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.running = 0

    def acquire(self) -> None:
        # No await between the check and the increment: atomic on the event loop.
        if self.limit is not None and self.running >= self.limit:
            raise TooManyCalls(
                f"the job is already serving {self.running} calls, its max_concurrency; retry later"
            )
        self.running += 1

    def release(self) -> None:
        self.running -= 1
