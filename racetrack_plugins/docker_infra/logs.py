"""Following a job container's output line by line, in a way a reader can stop."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

from racetrack_core.following import follow_lines


def follow(container: Any, tail: int, stop: threading.Event | None) -> Iterator[str]:
    """The last ``tail`` lines, then each new one, until the iterator is closed, ``stop`` is
    set (noticed within a second even when no line comes) or the container's output ends.

    The engine's stream blocks and comes in chunks; ``follow_lines`` reads it in a thread and
    closes it when the reader stops.
    """
    stream = container.logs(stream=True, follow=True, tail=tail)
    return follow_lines(_lines(stream), stream.close, stop, "docker-logs")


def _lines(chunks: Iterable[bytes]) -> Iterator[str]:
    pending = b""
    for chunk in chunks:
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            yield line.decode("utf-8", "replace")
