"""Manifest problems worded for a person: one sentence per problem, naming the field path, its
line, the offending value and, for a typo, the closest valid name.

:mod:`racetrack_core.schema` finds the problems (JSON-schema errors and the checks that no
schema can express); this module words them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from jsonschema.exceptions import ValidationError

from racetrack_core.manifest import FieldPath, Manifest
from racetrack_core.redaction import mask_url_credentials

FindingKind = Literal["field", "type", "unknown", "missing"]


@dataclass(frozen=True)
class Finding:
    """One problem before it is worded: where, what, and what kind of sentence it needs.

    ``type`` marks a value of the wrong type (it silences the value's other findings);
    ``unknown`` a field the schema does not know, with the closest valid path if any;
    ``missing`` a required field that is absent.
    """

    path: FieldPath
    message: str = ""
    kind: FindingKind = "field"
    suggestion: str | None = None


TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "object": "a mapping of fields",
    "array": "a list",
    "null": "nothing",
}


def closest(word: str, options: Iterable[str]) -> str | None:
    """The option most like ``word``, if one is close enough to be a likely typo."""
    close = difflib.get_close_matches(word, list(options), n=1)
    return close[0] if close else None


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for the closest option, or nothing."""
    close = closest(word, options)
    return f"; did you mean '{close}'?" if close else ""


def explain(error: ValidationError, prefix: FieldPath) -> list[Finding]:
    path: FieldPath = (*prefix, *error.absolute_path)
    keyword = str(error.validator)
    instance: Any = error.instance
    expected: Any = error.validator_value
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    hint = schema.get("x-hint")
    if "propertyNames" in error.relative_schema_path:
        key = instance
        message = f"the name {show(key)} is not valid: expected {hint or 'a valid name'}"
        return [Finding((*path, key), message)]
    if keyword == "additionalProperties" and isinstance(instance, Mapping):
        properties = schema.get("properties", {})
        # Older spellings stay readable but are never suggested.
        allowed = sorted(k for k, v in properties.items() if not v.get("deprecated"))
        found = []
        for key in instance:
            if key in schema.get("properties", {}):
                continue
            close = closest(str(key), allowed)
            if close:
                suggestion = dotted((*path, close))
                message = f"did you mean '{suggestion}'?"
            else:
                suggestion, message = None, f"allowed fields here: {', '.join(allowed)}"
            found.append(Finding((*path, key), message, "unknown", suggestion))
        return found
    if keyword == "required":
        missing = [name for name in expected if name not in instance]
        return [Finding((*path, name), kind="missing") for name in missing]
    value = show(instance)
    if keyword == "type":
        types = expected if isinstance(expected, list) else [expected]
        names = [TYPE_NAMES.get(str(t), str(t)) for t in types]
        wanted = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        advice = f"; write {hint}" if hint else ""
        return [Finding(path, f"expected {wanted}, got {describe(instance)}{advice}", "type")]
    if keyword in {"pattern", "format"}:
        return [Finding(path, f"{value} is not valid: expected {hint or f'to match {expected}'}")]
    if keyword == "enum":
        options = [str(option) for option in expected]
        message = f"{value} is not one of {', '.join(options)}"
        return [Finding(path, message + did_you_mean(str(instance), options))]
    if keyword == "maxLength":
        return [Finding(path, f"{value} is too long: at most {expected} characters")]
    if keyword in {"maxItems", "maxProperties"} and expected:
        return [Finding(path, f"has too many entries: at most {expected}")]
    if keyword in {"minimum", "exclusiveMinimum"}:
        return [Finding(path, f"{value} is too small: the minimum is {expected}")]
    if keyword in {"maximum", "exclusiveMaximum"}:
        return [Finding(path, f"{value} is too large: the maximum is {expected}")]
    if keyword == "uniqueItems" and isinstance(instance, list):
        seen: list[Any] = []
        for item in instance:
            if item in seen:
                return [Finding(path, f"{show(item)} is listed more than once")]
            seen.append(item)
    if keyword == "maxProperties" and expected == 0:
        return [Finding(path, "takes no fields here")]
    return [Finding(path, _shorten(mask_url_credentials(error.message)))]


def describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, str):
        return f"the string {show(value)}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


def _shorten(text: str) -> str:
    return text if len(text) <= 200 else text[:197] + "..."


def show(value: Any) -> str:
    if isinstance(value, str):
        value = mask_url_credentials(value)
        text = value if len(value) <= 60 else value[:57] + "..."
        return f"'{text}'"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Mapping | list):
        return describe(value)
    return str(value)


def dotted(path: Sequence[str | int]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def split_path(dotted: str) -> FieldPath:
    parts: list[str | int] = []
    for piece in dotted.split("."):
        name, *indices = piece.split("[")
        if name:
            parts.append(name)
        parts.extend(int(index.rstrip("]")) for index in indices if index.rstrip("]").isdigit())
    return tuple(parts)


def format_problems(manifest: Manifest, problems: Iterable[Finding]) -> list[str]:
    """Word each finding with its field and line; sort by line and drop repeats."""
    ordered = []
    for found in problems:
        # A missing field has no line of its own: point at the mapping that lacks it.
        anchor = found.path[:-1] if found.kind == "missing" else found.path
        location = manifest.location(anchor) if anchor else None
        where = f" ({location.describe()})" if location and location.describe() else ""
        field = dotted(found.path)
        if found.kind == "missing":
            text = f"missing required field '{field}'{where}"
        elif found.kind == "unknown":
            text = f"unknown field '{field}'{where}: {found.message}"
        else:
            text = f"field '{field}'{where}: {found.message}"
        ordered.append((location.line if location and location.line else 0, text))
    return list(dict.fromkeys(text for _, text in sorted(ordered, key=lambda item: item[0])))
