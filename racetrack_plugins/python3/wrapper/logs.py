"""The job's log: plain lines, or JSON lines with ``LOG_STRUCTURED``; the call's ids in each.

Every line written while a call is served, by the wrapper or by the job's own ``logging``,
carries the call's request-tracing id (``tracing_id=...``), and with ``LOG_CALLER_NAME`` the
caller's name (``caller_name=...``), as extra fields after the message. With
``LOG_STRUCTURED`` each line is a JSON object: ``time``, ``lvl``, ``msg``, then the same fields
(and ``exc_info`` for a traceback). Both switches take ``true``/``1``/``yes``/``on``.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from .chaining import current_tracing_id
from .context import current_caller_name

PLAIN_FORMAT = "[%(asctime)s] %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
_TRUE = {"1", "true", "yes", "on", "y"}
_LEVELS = {"warn": logging.WARNING, "crit": logging.CRITICAL, "off": logging.CRITICAL + 10}


def env_flag(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether an environment switch like ``LOG_STRUCTURED=true`` is on."""
    env = os.environ if environ is None else environ
    return env.get(name, "").strip().lower() in _TRUE


class CallFields(logging.Filter):
    """Adds ``tracing_id`` (and ``caller_name`` if asked) of the call in progress to a record."""

    def __init__(self, *, caller_name: bool) -> None:
        super().__init__()
        self.caller_name = caller_name

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "tracing_id", None) is None:
            record.tracing_id = current_tracing_id()
        if self.caller_name and getattr(record, "caller_name", None) is None:
            record.caller_name = current_caller_name()
        return True


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = {}
    for name in ("tracing_id", "caller_name"):
        value = getattr(record, name, None)
        if value:
            fields[name] = value
    return fields


class PlainFormatter(logging.Formatter):
    """``[time] LEVEL logger: message, tracing_id=..., caller_name=...``."""

    def __init__(self) -> None:
        super().__init__(PLAIN_FORMAT, DATE_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _fields(record)
        if not fields:
            return line
        first, newline, rest = line.partition("\n")
        extra = ", ".join(
            f'{name}="{value}"' if " " in str(value) else f"{name}={value}"
            for name, value in fields.items()
        )
        return f"{first}, {extra}{newline}{rest}"


class StructuredFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``lvl``, ``msg`` and the call's fields."""

    def format(self, record: logging.LogRecord) -> str:
        # timezone.utc, not datetime.UTC (3.11+): a job's own Python may be older.
        created = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)  # noqa: UP017
        entry: dict[str, Any] = {
            "time": created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "lvl": record.levelname,
            "msg": record.getMessage(),
            "logger": record.name,
            **_fields(record),
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logs(
    log_level: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
) -> None:
    """Set up the root logger as the job runs: format from ``LOG_STRUCTURED``, fields always.

    ``log_level`` (else ``LOG_LEVEL``, else ``info``) is the level of the job's own loggers;
    libraries stay at ``INFO`` at most, as in the original.
    """
    env = os.environ if environ is None else environ
    level = parse_level(log_level or env.get("LOG_LEVEL") or "info")
    handler = logging.StreamHandler(stream or sys.stderr)
    structured = env_flag("LOG_STRUCTURED", env)
    handler.setFormatter(StructuredFormatter() if structured else PlainFormatter())
    handler.addFilter(CallFields(caller_name=env_flag("LOG_CALLER_NAME", env)))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(level, logging.INFO) if level < logging.INFO else level)
    for name in ("racetrack", "racetrack.job", "racetrack_job_entrypoint"):
        logging.getLogger(name).setLevel(level)
    # uvicorn's loggers keep their own handlers unless told otherwise: send them through ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True


def parse_level(name: str) -> int:
    """``debug``, ``info``, ``warn(ing)``, ``error``, ``crit(ical)`` or ``off``."""
    lowered = name.strip().lower()
    if lowered in _LEVELS:
        return _LEVELS[lowered]
    level = logging.getLevelName(lowered.upper())
    if not isinstance(level, int):
        raise ValueError(f"log level {name!r} is unknown; use debug, info, warning or error")
    return level


def get_logger(name: str) -> logging.Logger:
    """A logger under ``racetrack``, as the original's ``get_logger``."""
    return logging.getLogger("racetrack").getChild(name)
