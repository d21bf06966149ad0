"""Following a job's output from a blocking source, in a way a reader can stop.

Engines and API servers hand a job's log as a blocking stream of lines; a reader (the
Lifecycle route that streams logs) must be able to stop waiting. A thread reads the stream into
a queue, the reader takes lines from the queue and looks at its stop event between them, and
closing the stream is how the reading thread is released. Every target follows logs this way.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator

#: How often a follower waiting for a line looks at its stop event (seconds).
POLL_SECONDS = 0.5


def follow_lines(
    lines: Iterable[str], close: Callable[[], object], stop: threading.Event | None, name: str
) -> Iterator[str]:
    """Each line of ``lines`` until the iterator is closed, ``stop`` is set (noticed within
    ``POLL_SECONDS`` even when no line comes) or ``lines`` ends; then ``close()`` the source.

    ``name`` names the reading thread.
    """
    pending: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        try:
            for line in lines:
                pending.put(line)
        except Exception:  # noqa: S110 - closing the source is how a follower stops it
            pass
        pending.put(None)

    threading.Thread(target=pump, daemon=True, name=name).start()
    try:
        while stop is None or not stop.is_set():
            try:
                line = pending.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if line is None:
                return
            yield line
    finally:
        close()
