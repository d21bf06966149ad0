"""Following a job container's output line by line, in a way a reader can stop."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

#: How often a follower waiting for a line looks at its stop event (seconds).
POLL_SECONDS = 0.5


def follow(container: Any, tail: int, stop: threading.Event | None) -> Iterator[str]:
    """The last ``tail`` lines, then each new one, until the iterator is closed, ``stop`` is
    set (noticed within a second even when no line comes) or the container's output ends.

    The engine's stream blocks, so a thread reads it into a queue; closing the stream is how
    that thread is released.
    """
    stream = container.logs(stream=True, follow=True, tail=tail)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        pending = b""
        try:
            for chunk in stream:
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    lines.put(line.decode("utf-8", "replace"))
        except Exception:  # noqa: S110 - closing the stream is how a follower stops it
            pass
        lines.put(None)

    threading.Thread(target=pump, daemon=True, name="docker-logs").start()
    try:
        while stop is None or not stop.is_set():
            try:
                line = lines.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if line is None:
                return
            yield line
    finally:
        stream.close()
