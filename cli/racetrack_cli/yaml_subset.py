"""Reading and writing the client's configuration YAML without loading a YAML library.

A YAML library costs more start-up time than all of the rest of ``racetrack list``, and the
configuration is a small tree of mappings and strings. :func:`dump` writes it as block YAML
with JSON-quoted strings (valid YAML that any parser, ``racetrack-client``'s included, reads);
:func:`load` reads that, and the plain block style other tools write, itself, and hands any
other YAML to ruamel.yaml.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: Plain scalars that YAML reads as something other than a string: left to the real parser.
_NOT_A_STRING = re.compile(
    r"^(?:[-+]?(?:\d[\d_]*(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+|\.inf|\.nan)"
    r"|true|false|yes|no|on|off|null|~)$",
    re.IGNORECASE,
)
_SPECIAL_START = tuple("[]{}&*!|>%@`#,?-'\"")
#: Strings written without quotes: no character that YAML could read as syntax.
_PLAIN = re.compile(r"^[A-Za-z/][A-Za-z0-9_.~/:@+=%-]*(?<!:)$")


class _Unsupported(Exception):
    """The text uses YAML beyond the subset read here."""


def dump(data: dict[str, Any]) -> str:
    """Block YAML of nested mappings whose leaves are strings or None."""
    lines: list[str] = []
    _dump_mapping(data, 0, lines)
    return "".join(line + "\n" for line in lines)


def _dump_mapping(data: dict[str, Any], indent: int, lines: list[str]) -> None:
    pad = " " * indent
    for key, value in data.items():
        written = _dump_scalar(str(key))
        if isinstance(value, dict):
            if value:
                lines.append(f"{pad}{written}:")
                _dump_mapping(value, indent + 2, lines)
            else:
                lines.append(f"{pad}{written}: {{}}")
        elif value is None:
            lines.append(f"{pad}{written}: null")
        else:
            lines.append(f"{pad}{written}: {_dump_scalar(str(value))}")


def _dump_scalar(text: str) -> str:
    """A string plain when YAML reads it back as the same string, else JSON-quoted."""
    if _PLAIN.match(text) and not _NOT_A_STRING.match(text) and ": " not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def load(text: str) -> Any:
    """Parse YAML text; raise ValueError with the reason when it is not valid YAML."""
    try:
        return _load_subset(text)
    except _Unsupported:
        pass
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        problem = getattr(exc, "problem", None)
        mark = getattr(exc, "problem_mark", None)
        if problem and mark is not None:
            raise ValueError(
                f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
            ) from None
        raise ValueError(" ".join(str(exc).split())) from None


def _load_subset(text: str) -> dict[str, Any] | None:
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(0, root)]
    # The key written last with nothing after its colon: a nested mapping may follow.
    pending: tuple[dict[str, Any], str] | None = None
    seen_any = False
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped in ("", "---") or stripped.startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        if raw[indent] == "\t":
            raise _Unsupported
        if pending is not None:
            parent, key = pending
            pending = None
            if indent > stack[-1][0]:
                child: dict[str, Any] = {}
                parent[key] = child
                stack.append((indent, child))
        while indent < stack[-1][0]:
            stack.pop()
        if indent != stack[-1][0]:
            raise _Unsupported
        mapping = stack[-1][1]
        key, rest = _split_entry(stripped)
        if key in mapping:
            raise _Unsupported  # a duplicate key: the real parser says so
        seen_any = True
        if rest == "":
            mapping[key] = None
            pending = (mapping, key)
        else:
            mapping[key] = _scalar(rest)
    return root if seen_any else None


def _split_entry(line: str) -> tuple[str, str]:
    if line.startswith(('"', "'")):
        end = _quoted_end(line)
        key = _scalar(line[: end + 1])
        rest = line[end + 1 :]
        if not rest.startswith(":") or not isinstance(key, str):
            raise _Unsupported
        return key, rest[1:].strip()
    if line.startswith(_SPECIAL_START):
        raise _Unsupported
    if line.endswith(":"):
        key, rest = line[:-1], ""
    elif ": " in line:
        key, rest = line.split(": ", 1)
    else:
        raise _Unsupported
    if ": " in key or " #" in key or _NOT_A_STRING.match(key):
        raise _Unsupported
    return key.strip(), rest.strip()


def _quoted_end(text: str) -> int:
    quote = text[0]
    index = 1
    while index < len(text):
        char = text[index]
        if quote == '"' and char == "\\":
            index += 2
            continue
        if char == quote:
            if quote == "'" and text[index + 1 : index + 2] == "'":
                index += 2
                continue
            return index
        index += 1
    raise _Unsupported


def _scalar(text: str) -> Any:
    if text == "{}":
        return {}
    if text in ("null", "~", "Null", "NULL"):
        return None
    if text.startswith('"'):
        if _quoted_end(text) != len(text) - 1:
            raise _Unsupported
        try:
            return json.loads(text)
        except ValueError:
            raise _Unsupported from None
    if text.startswith("'"):
        if _quoted_end(text) != len(text) - 1:
            raise _Unsupported
        return text[1:-1].replace("''", "'")
    if text.startswith(_SPECIAL_START) or " #" in text or ": " in text or text.endswith(":"):
        raise _Unsupported
    if _NOT_A_STRING.match(text):
        raise _Unsupported
    return text
