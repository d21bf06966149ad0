"""A method's result as JSON bytes: plain types as ``json`` writes them, a few others converted.

The encoder is made once: ``json.dumps`` with any non-default option (here ``default``,
``allow_nan`` and ``ensure_ascii``) builds a new ``JSONEncoder`` on every call, which costs more
than encoding a small result.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from typing import Any


def _convert(value: Any) -> Any:
    """What ``json`` cannot encode itself: dataclasses, sets, dates and ``tolist()`` arrays."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset):
        return list(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if callable(getattr(value, "tolist", None)):  # numpy arrays and scalars
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# Stateless between calls (its C encoder is made per call), so one is shared by every call.
_ENCODER = json.JSONEncoder(default=_convert, allow_nan=False, ensure_ascii=False)
# Error answers as Starlette's JSONResponse writes them, byte for byte.
_COMPACT = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def encode_json(value: Any) -> bytes:
    """Encode a method's result; dataclasses, sets, dates and ``tolist()`` arrays are converted."""
    try:
        text = _ENCODER.encode(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"the result cannot be encoded as JSON: {error}") from None
    return text.encode()


def error_body(message: str, kind: str) -> bytes:
    """The body of every error answer: ``{"error": "<message>", "type": "<kind>"}``."""
    return _COMPACT.encode({"error": message, "type": kind}).encode()
