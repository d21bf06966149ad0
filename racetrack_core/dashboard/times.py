"""Times as the Dashboard's pages show them: in UTC, and as "how long ago"."""

from __future__ import annotations

import datetime
import time


def when(timestamp: float | None) -> str:
    """A time as people read it, in UTC: ``2026-11-30 07:45:12``."""
    if not timestamp:
        return "never"
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def iso(timestamp: float | None) -> str:
    """A machine-readable time for ``<time datetime>``."""
    if not timestamp:
        return ""
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def ago(timestamp: float | None, now: float | None = None) -> str:
    """How long ago: ``just now``, ``5 min ago``, ``3 h ago``, ``2 days ago``."""
    if not timestamp:
        return "never"
    seconds = max(0, int((now or time.time()) - timestamp))
    if seconds < 45:
        return "just now"
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))} min ago"
    if seconds < 86400 * 2:
        return f"{round(seconds / 3600)} h ago"
    return f"{round(seconds / 86400)} days ago"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s"
