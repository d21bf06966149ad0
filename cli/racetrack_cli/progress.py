"""How a deployment's progress is shown while ``racetrack deploy`` waits.

Each finished phase is a line with the time it took. On a terminal the phase under way is a
live line below them, redrawn with its running time; elsewhere (a log, a pipe, CI) only the
finished phases are printed. Warnings are printed once, as they first appear.
"""

from __future__ import annotations

import re
import time
from typing import Any

import click

from racetrack_cli.output import warn

SPINNER = "|/-\\"
LINE = re.compile(r" \((?:[^()]* )?line [0-9]+\)")


def same_warning(message: str) -> str:
    """A warning without its line number: the server words a manifest warning as the CLI
    does, but knows no lines (it gets the manifest as data, not as a file)."""
    return LINE.sub("", message)


class PhaseReporter:
    """Reports the phases of one deployment record after another, on stderr."""

    def __init__(self, live: bool) -> None:
        self.live = live
        self.reported = 0  # phases printed as finished
        self.current: str | None = None
        self.current_seen_at = time.monotonic()
        self.started = time.monotonic()
        self.warned: set[str] = set()
        self.frame = 0
        self.drawn = False

    def update(self, record: dict[str, Any]) -> None:
        """Print the phases that finished since the last record, and new warnings."""
        phases = [step for step in record.get("phases") or [] if isinstance(step, dict)]
        finished = phases[:-1] if record.get("status") == "in_progress" else phases
        for index in range(self.reported, len(finished)):
            step = finished[index]
            following = phases[index + 1]["time"] if index + 1 < len(phases) else None
            end = following if following is not None else record.get("finish_time")
            self._line(_phase_line(step["phase"], step["time"], end))
        self.reported = max(self.reported, len(finished))
        if phases and record.get("status") == "in_progress":
            phase = str(phases[-1]["phase"])
            if phase != self.current:
                self.current = phase
                self.current_seen_at = time.monotonic()
        else:
            self.current = None
        for message in str(record.get("warnings") or "").splitlines():
            if message.strip() and same_warning(message) not in self.warned:
                self.warned.add(same_warning(message))
                self._clear()
                warn(message)
        self._draw()

    def tick(self, seconds: float) -> None:
        """Wait ``seconds``, keeping the live line's clock running."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(left, 0.1))
            self._draw()

    def finish(self, record: dict[str, Any]) -> None:
        """Clear the live line and say how long it all took."""
        self._clear()
        status = record.get("status")
        took = time.monotonic() - self.started
        if status == "in_progress":
            return
        click.echo(f"{status} in {took:.1f} s", err=True)

    def _line(self, text: str) -> None:
        self._clear()
        click.echo(text, err=True)

    def _draw(self) -> None:
        if not self.live or self.current is None:
            return
        self.frame += 1
        running = time.monotonic() - self.current_seen_at
        spinner = SPINNER[self.frame % len(SPINNER)]
        line = f"\r\033[K  {spinner} {self.current} {running:.1f} s"
        click.echo(line, nl=False, err=True, color=True)
        self.drawn = True

    def _clear(self) -> None:
        if self.drawn:
            click.echo("\r\033[K", nl=False, err=True, color=True)
            self.drawn = False


def _phase_line(phase: str, start: Any, end: Any) -> str:
    if isinstance(start, int | float) and isinstance(end, int | float):
        return f"  {phase:<28} {max(end - start, 0.0):6.1f} s"
    return f"  {phase}"
