"""What a manifest may hold: its size, its nesting, its count of values, plain data only.

A manifest is a few hundred bytes of YAML, and YAML is parsed in pure Python: without these
bounds a small hostile file could hold billions of values (nested aliases), recurse the parser
past Python's stack (``[[[[...``), or carry values that are not data (``!!set``, ``!tag``).
The text is checked before parsing, the parsed tree before it is used.
"""

from __future__ import annotations

import datetime
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedOrderedMap

from racetrack_core.errors import ManifestError

MAX_MANIFEST_CHARS = 64 * 1024
"""Longest manifest text read (a manifest is a few hundred bytes; parsing is pure Python)."""
MAX_VALUES = 10_000
"""Most values (mappings, lists, scalars) a manifest may hold once its YAML aliases are expanded;
nested aliases can otherwise make a few hundred bytes stand for billions of values."""
MAX_DEPTH = 32
"""Deepest nesting of lists and mappings (a real manifest nests four or five levels)."""
MAX_FLOW_DEPTH = 4 * MAX_DEPTH
"""Most ``[``/``{`` open at once in the text, counted before parsing (a rough count that skips
quoted strings): the parser recurses once per level and takes seconds to fail at its limit."""
TOO_DEEP = f"the manifest nests lists or mappings more than {MAX_DEPTH} levels deep"
PLAIN_SCALARS = (str, int, float, type(None), datetime.date)
_PLAIN_KEYS = (str, int, float, type(None))
_QUOTE_MAY_FOLLOW = " \t\r\n[{,:-?"


def check_text(text: str, source: str | None) -> None:
    """Refuse a manifest text too long, or with too many flow collections open at once."""
    if len(text) > MAX_MANIFEST_CHARS:
        raise ManifestError(
            [
                f"the manifest is larger than {MAX_MANIFEST_CHARS // 1024} KiB: keep data out of "
                "it (a manifest names files of the job directory instead)"
            ],
            source=source,
        )
    depth, quote, previous = 0, "", "\n"
    for char in text:
        if quote:
            if char in (quote, "\n"):
                quote = ""
        elif char in "'\"" and previous in _QUOTE_MAY_FOLLOW:
            quote = char
        elif char in "[{":
            depth += 1
            if depth > MAX_FLOW_DEPTH:
                raise ManifestError([TOO_DEEP], source=source)
        elif char in "]}":
            depth = max(0, depth - 1)
        previous = char


def check_size(node: Any, seen: list[int], source: str | None) -> None:
    """Count the values under ``node`` (an alias counts each time it is used), stopping early,
    and refuse values that are not plain data (``!!set``, ``!!omap``, ``!!binary``, ``!tags``)
    and nesting deeper than :data:`MAX_DEPTH`."""
    stack: list[tuple[tuple[Any, ...], Any]] = [((), node)]
    while stack:
        path, value = stack.pop()
        seen[0] += 1
        if len(path) > MAX_DEPTH:
            raise ManifestError([TOO_DEEP], source=source)
        if seen[0] > MAX_VALUES:
            raise ManifestError(
                [
                    f"the manifest holds more than {MAX_VALUES} values once its YAML aliases "
                    "(*name) are expanded: write the values out, or use fewer aliases"
                ],
                source=source,
            )
        if isinstance(value, CommentedMap) and not isinstance(value, CommentedOrderedMap):
            for key, item in value.items():
                if not isinstance(key, _PLAIN_KEYS):
                    _refuse(path, key, source, what="a key")
                seen[0] += 1
                stack.append(((*path, key), item))
        elif isinstance(value, list):
            stack.extend(((*path, index), item) for index, item in enumerate(value))
        elif not isinstance(value, PLAIN_SCALARS):
            _refuse(path, value, source, what="a value")


def _refuse(path: tuple[Any, ...], value: Any, source: str | None, what: str) -> None:
    where = f"field '{'.'.join(map(str, path))}'" if path else "the top level"
    raise ManifestError(
        [
            f"{where} holds {what} of type {type(value).__name__}, which a manifest cannot "
            "hold: write plain strings, numbers, lists and mappings (no !!set, !!omap, "
            "!!binary or !tag, and no list or mapping as a key)"
        ],
        source=source,
    )
