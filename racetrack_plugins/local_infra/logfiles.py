"""A job version's log file: what its processes print, plus the driver's own notes.

Every replica of a version appends to one ``job.log`` in the version's state folder (opened in
append mode, so lines from side-by-side replicas interleave but never overwrite each other).
Once the file grows past its cap it is copied to ``job.log.1`` and truncated in place: the
processes keep their file open, so renaming it would not help. Lines written between the copy
and the truncation are lost; that is the price of not piping every line through the server.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

NOTE_PREFIX = "[racetrack] "
FOLLOW_INTERVAL = 0.1


class JobLog:
    """The log of one job version, at ``folder/job.log`` (and ``job.log.1`` once rotated)."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.path = folder / "job.log"
        self.rotated = folder / "job.log.1"
        self.max_bytes = max_bytes

    def note(self, message: str) -> None:
        """Append one line from the driver itself (never pass it environment values)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        with self.path.open("a", encoding="utf-8") as log:
            log.write(f"{NOTE_PREFIX}{stamp} {message}\n")

    def rotate_if_needed(self) -> None:
        """Copy the log aside and truncate it once it is larger than the cap."""
        try:
            if self.path.stat().st_size <= self.max_bytes:
                return
            shutil.copyfile(self.path, self.rotated)
            os.truncate(self.path, 0)
        except FileNotFoundError:
            return

    def tail(self, lines: int = 0) -> str:
        """The last ``lines`` lines (0: everything kept, the rotated file first)."""
        return "\n".join(self._last_lines(lines, self._size()))

    def follow(self, tail: int = 20, stop: threading.Event | None = None) -> Iterator[str]:
        """The last ``tail`` lines, then each new line (without its line ending) as it comes.

        Waits for the file to appear; starts over from the top when the file was truncated by
        a rotation. Runs until the generator is closed or ``stop`` is set (checked at least
        every FOLLOW_INTERVAL, so a thread reading it can be released).
        """
        position = self._size()
        if tail:
            yield from self._last_lines(tail, position)
        pending = b""
        while stop is None or not stop.is_set():
            size = self._size()
            if size < position:  # rotated: the file was truncated under us
                position, pending = 0, b""
            if size > position:
                with self.path.open("rb") as log:
                    log.seek(position)
                    chunk = log.read(size - position)
                position += len(chunk)
                *complete, pending = (pending + chunk).split(b"\n")
                for line in complete:
                    yield line.decode("utf-8", errors="replace")
            else:
                time.sleep(FOLLOW_INTERVAL)

    def remove(self) -> None:
        """Delete the log and its rotated copy."""
        self.path.unlink(missing_ok=True)
        self.rotated.unlink(missing_ok=True)

    def _last_lines(self, lines: int, size: int) -> list[str]:
        """The last ``lines`` lines (0: all) of the rotated file and the first ``size`` bytes."""
        kept: deque[str] = deque(maxlen=lines or None)
        for path, limit in ((self.rotated, -1), (self.path, size)):
            try:
                with path.open("rb") as log:
                    data = log.read(limit)
            except FileNotFoundError:
                continue
            kept.extend(data.decode("utf-8", errors="replace").splitlines())
        return list(kept)

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0
