"""The threads that run a job's ``def`` methods, so that a slow call does not stop the server.

A dedicated ``ThreadPoolExecutor`` reached with ``loop.run_in_executor``, instead of
``anyio.to_thread.run_sync``: anyio's hand-over yields to the event loop twice more (a checkpoint,
and its capacity limiter) and enters a cancel scope on every call, which cost about as much as
the rest of a small call. The semantics are anyio's: at most ``size`` methods run at once and
further calls wait in a queue (``max_concurrency``, when set, refuses them with 429 first);
the method runs in a copy of the caller's ``contextvars``; and ``anyio.from_thread.run`` works
inside it, as in an anyio worker thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from anyio.lowlevel import EventLoopToken, current_token

logger = logging.getLogger("racetrack.job")
Result = TypeVar("Result")

#: anyio's default thread limit, which ``def perform`` calls had before this pool.
DEFAULT_THREADS = 40


def _enter_anyio_worker(token: EventLoopToken) -> None:
    """Let ``anyio.from_thread.run`` find the event loop without a ``token`` argument.

    anyio keeps the loop of its own worker threads in a private thread-local; without it the
    call would need ``token=`` in this thread. Skipped if a later anyio moves it.
    """
    try:
        from anyio._core._eventloop import threadlocals
    except ImportError:  # pragma: no cover - depends on anyio's internals
        logger.debug("anyio.from_thread needs token= in job worker threads", exc_info=True)
        return
    threadlocals.current_token = token


class WorkerThreads:
    """At most ``size`` threads, started as calls need them, for one event loop."""

    def __init__(self, size: int = DEFAULT_THREADS) -> None:
        self.size = size
        self._executor: ThreadPoolExecutor | None = None

    async def run(self, method: Callable[..., Result], arguments: Mapping[str, Any]) -> Result:
        """Call ``method(**arguments)`` in a worker thread and wait for its result."""
        if self._executor is None:
            # Made on the loop, on the first call: the threads need the loop's token.
            self._executor = ThreadPoolExecutor(
                self.size, "job-worker", _enter_anyio_worker, (current_token(),)
            )
        call = functools.partial(contextvars.copy_context().run, method, **arguments)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def shutdown(self) -> None:
        """Drop the calls still queued; the running ones finish in their threads."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
