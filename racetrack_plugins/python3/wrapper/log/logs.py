"""``from racetrack_job_wrapper.log.logs import get_logger``, as in the original wrapper."""

from __future__ import annotations

from ..logs import configure_logs, get_logger

__all__ = ["configure_logs", "get_logger"]
