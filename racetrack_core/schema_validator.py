"""The JSON-schema validator of manifests: Draft 2020-12 with ECMA-262 meaning for ``pattern``.

The published schema is written for editors, whose validators read ``pattern`` as ECMA-262
(JavaScript) regular expressions. Python's ``re`` reads the same text a little differently, and
the differences let bad values through: ``$`` also matches before a final newline (so
``name: "abc\\n"`` passed ``^[a-z0-9-]+$``), and ``\\d`` and ``\\w`` match any Unicode digit or
letter. :data:`ManifestValidator` checks each pattern as ECMA-262 does: the pattern text is
translated (``$`` becomes ``\\Z``, ``\\d`` becomes ``[0-9]``, ``\\w`` becomes ``[A-Za-z0-9_]``)
before it is searched, so the schema file itself stays plain ECMA-262.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

_OUTSIDE_CLASS = {"d": "[0-9]", "D": "[^0-9]", "w": "[A-Za-z0-9_]", "W": "[^A-Za-z0-9_]"}
_INSIDE_CLASS = {"d": "0-9", "w": "A-Za-z0-9_"}


@functools.lru_cache(maxsize=512)
def python_pattern(pattern: str) -> re.Pattern[str]:
    """``pattern`` (ECMA-262, no flags) compiled so that Python matches what ECMA-262 matches."""
    out: list[str] = []
    in_class = False
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            escaped = pattern[index + 1]
            table = _INSIDE_CLASS if in_class else _OUTSIDE_CLASS
            out.append(table.get(escaped, char + escaped))
            index += 2
            continue
        if in_class:
            in_class = char != "]"
            out.append(char)
        elif char == "[":
            in_class = True
            out.append(char)
        elif char == "$":
            out.append(r"\Z")  # the very end only, never before a final newline
        else:
            out.append(char)
        index += 1
    return re.compile("".join(out))


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not python_pattern(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


ManifestValidator: type[Draft202012Validator] = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, validators={"pattern": _pattern}
)
"""Draft 2020-12, with ``pattern`` read as ECMA-262."""
