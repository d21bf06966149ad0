"""The benchmark's job: ``perform`` returns one small constant JSON object, nothing else."""

from __future__ import annotations

ANSWER = {"ok": True, "job": "bench", "answer": 42}


class SyncJob:
    """A plain ``def perform``, as most jobs write it: the wrapper runs it in a worker thread."""

    def perform(self, name: str = "bench") -> dict[str, object]:
        return ANSWER


class AsyncJob:
    """An ``async def perform``: the wrapper awaits it on the event loop."""

    async def perform(self, name: str = "bench") -> dict[str, object]:
        return ANSWER
