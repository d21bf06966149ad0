"""The manifest schema: the core JSON Schema composed with what plugins add, and validation.

The core schema lives in ``schema/manifest.schema.json``. Each job type validates the
``jobtype_extra`` section with its own fragment, and plugins may add top-level fields through
``manifest_schema_fragments``. Validation turns every JSON-schema error into one sentence that
names the field path, its line, the offending value and, for a typo, the closest valid name.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from racetrack_core.errors import ManifestError, NotFoundError, PluginError
from racetrack_core.events import RESERVED_ENV
from racetrack_core.manifest import FieldPath, Manifest, Problem, dump_yaml
from racetrack_core.plugins import PluginManager
from racetrack_core.registry import JobType

SCHEMA_FILE = "manifest.schema.json"
DEFAULT_VERSION = "0.0.1"


@dataclass
class ValidatedManifest:
    """A manifest that passed validation, with defaults filled in and its job type resolved."""

    data: dict[str, Any]
    job_type: JobType
    warnings: list[str] = field(default_factory=list)
    source: str | None = None

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def version(self) -> str:
        return str(self.data["version"])

    def to_yaml(self) -> str:
        return dump_yaml(self.data)


@functools.cache
def _core_schema_text() -> str:
    here = Path(__file__).parent
    for candidate in (here / "schema" / SCHEMA_FILE, here.parent / "schema" / SCHEMA_FILE):
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    raise FileNotFoundError(f"{SCHEMA_FILE} is missing from the racetrack installation")


def core_schema() -> dict[str, Any]:
    """The core manifest schema, without anything plugins add (a fresh copy)."""
    schema: dict[str, Any] = json.loads(_core_schema_text())
    return schema


def _with_plugin_fields(plugins: PluginManager) -> dict[str, Any]:
    schema = core_schema()
    properties = schema["properties"]
    owners: dict[str, str] = {}
    for plugin, call in plugins.implementations("manifest_schema_fragments"):
        fragment = call()
        if fragment is None:
            continue
        if not isinstance(fragment, Mapping):
            raise PluginError(
                f"plugin '{plugin}' returned {type(fragment).__name__} from "
                "manifest_schema_fragments; return a mapping of field name to JSON schema"
            )
        for name, field_schema in fragment.items():
            if name in properties:
                owner = f"plugin '{owners[name]}'" if name in owners else "the core schema"
                raise PluginError(
                    f"plugin '{plugin}' adds manifest field '{name}', which {owner} defines already"
                )
            _check_schema(field_schema, f"plugin '{plugin}' manifest field '{name}'")
            properties[name] = copy.deepcopy(dict(field_schema))
            owners[name] = plugin
    return schema


def _check_schema(schema: Any, what: str) -> None:
    try:
        Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise PluginError(f"{what} has an invalid JSON schema: {exc.message}") from None


def composed_schema(plugins: PluginManager) -> dict[str, Any]:
    """The whole manifest schema: core, plugin fields, and each job type's ``jobtype_extra``.

    Meant for editors and other tools; each job type's latest version selects its fragment.
    """
    schema = _with_plugin_fields(plugins)
    registry = plugins.job_types
    branches = []
    for name in registry.names():
        latest = registry.resolve(f"{name}:latest")
        extra = latest.extra_schema if latest.extra_schema is not None else {"maxProperties": 0}
        branches.append(
            {
                "if": {
                    "required": ["jobtype"],
                    "properties": {"jobtype": {"pattern": f"^{re.escape(name)}(:|$)"}},
                },
                "then": {"properties": {"jobtype_extra": copy.deepcopy(dict(extra))}},
            }
        )
    if branches:
        schema["allOf"] = branches
    names = registry.names()
    if names:
        schema["properties"]["jobtype"]["examples"] = [f"{n}:latest" for n in names]
    return schema


def validate_manifest(manifest: Manifest, plugins: PluginManager) -> ValidatedManifest:
    """Validate a loaded manifest against the composed schema and the plugins' own checks.

    Return it with defaults filled in and its job type resolved; raise ManifestError listing
    every problem, sorted by line.
    """
    data = manifest.data
    problems: list[tuple[FieldPath, str]] = []
    schema = _with_plugin_fields(plugins)
    validator = Draft202012Validator(schema)
    for error in validator.iter_errors(data):
        problems.extend(_explain(error, (), data))

    problems = _drop_explained_missing(problems)
    problems = _drop_after_type_errors(problems)
    job_type = None
    if not any(path[:1] == ("jobtype",) for path, _ in problems) and "jobtype" in data:
        job_type, problem = _resolve_job_type(plugins, str(data["jobtype"]))
        if problem:
            problems.append((("jobtype",), problem))
    if job_type is not None and isinstance(data.get("jobtype_extra", {}), Mapping):
        extra = data.get("jobtype_extra", {})
        problems.extend(_drop_after_type_errors(_check_extra(job_type, extra)))

    problems.extend(_check_semantics(data, plugins))
    if job_type is not None and not problems:
        for plugin, call in plugins.implementations("validate_manifest"):
            for found in call(manifest=data, job_type=job_type) or ():
                if not isinstance(found, Problem):
                    raise PluginError(
                        f"plugin '{plugin}' returned {type(found).__name__} from "
                        "validate_manifest; return racetrack_core.manifest.Problem objects"
                    )
                problems.append((_split_path(found.field), found.message))

    if problems or job_type is None:
        messages = _format(manifest, problems) or ["field 'jobtype' is missing"]
        raise ManifestError(messages, source=manifest.source)

    result = copy.deepcopy(data)
    result.setdefault("version", DEFAULT_VERSION)
    if isinstance(result.get("git"), dict):
        result["git"].setdefault("directory", ".")
    return ValidatedManifest(
        data=result, job_type=job_type, warnings=list(manifest.warnings), source=manifest.source
    )


def _drop_explained_missing(problems: list[tuple[FieldPath, str]]) -> list[tuple[FieldPath, str]]:
    """A typo gives 'unknown field' with a suggestion; don't also report the field as missing."""
    suggested = {
        message.split("did you mean '", 1)[1].rstrip("'?")
        for _, message in problems
        if message.startswith("unknown field; did you mean '")
    }
    return [
        (path, message)
        for path, message in problems
        if not (message == "missing required field" and _dotted(path) in suggested)
    ]


def _drop_after_type_errors(
    problems: list[tuple[FieldPath, str]],
) -> list[tuple[FieldPath, str]]:
    """A value of the wrong type needs one sentence, not one per keyword it also fails."""
    mistyped = {path for path, message in problems if message.startswith("expected ")}
    return [
        (path, message)
        for path, message in problems
        if path not in mistyped or message.startswith("expected ")
    ]


def _resolve_job_type(plugins: PluginManager, reference: str) -> tuple[JobType | None, str]:
    registry = plugins.job_types
    try:
        return registry.resolve(reference), ""
    except NotFoundError as exc:
        name = reference.partition(":")[0]
        message = str(exc)
        if name not in registry.names():
            close = difflib.get_close_matches(name, registry.names(), n=1)
            if close:
                message += f"; did you mean '{close[0]}'?"
        return None, message


def _check_extra(job_type: JobType, extra: Mapping[str, Any]) -> list[tuple[FieldPath, str]]:
    fragment = job_type.extra_schema
    if fragment is None:
        return [
            (("jobtype_extra", key), f"job type '{job_type.name}' takes no jobtype_extra fields")
            for key in extra
        ]
    _check_schema(fragment, f"job type '{job_type.ref}' of plugin '{job_type.plugin}'")
    problems = []
    for error in Draft202012Validator(fragment).iter_errors(dict(extra)):
        problems.extend(_explain(error, ("jobtype_extra",), extra))
    return problems


def _check_semantics(
    data: Mapping[str, Any], plugins: PluginManager
) -> list[tuple[FieldPath, str]]:
    problems: list[tuple[FieldPath, str]] = []
    for section in ("build_env", "runtime_env"):
        env = data.get(section)
        if isinstance(env, Mapping):
            for name in env:
                if name in RESERVED_ENV:
                    problems.append(
                        (
                            (section, name),
                            f"'{name}' is set by Racetrack itself; choose another name",
                        )
                    )
    resources = data.get("resources")
    if isinstance(resources, Mapping):
        for kind, parse in (("memory", _memory_bytes), ("cpu", _cpu_cores)):
            low, high = resources.get(f"{kind}_min"), resources.get(f"{kind}_max")
            if low is None or high is None:
                continue
            low_value, high_value = parse(low), parse(high)
            if low_value is not None and high_value is not None and low_value > high_value:
                problems.append(
                    (
                        ("resources", f"{kind}_min"),
                        f"{low} is more than {kind}_max ({high}); "
                        "the minimum cannot exceed the maximum",
                    )
                )
    target = data.get("infrastructure_target")
    if isinstance(target, str):
        targets = plugins.infrastructure_targets
        if target not in targets.names():
            installed = ", ".join(targets.names()) or "none"
            message = f"unknown infrastructure target '{target}'. Installed: {installed}"
            close = difflib.get_close_matches(target, targets.names(), n=1)
            if close:
                message += f"; did you mean '{close[0]}'?"
            problems.append((("infrastructure_target",), message))
    return problems


MEMORY_UNITS = {
    "": 1,
    "k": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}


def _memory_bytes(value: Any) -> float | None:
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?", str(value))
    return float(match[1]) * MEMORY_UNITS[match[2] or ""] if match else None


def _cpu_cores(value: Any) -> float | None:
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(m?)", str(value))
    if not match:
        return None
    return float(match[1]) / (1000 if match[2] else 1)


# ------------------------------------------------------------------ error sentences


TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "object": "a mapping of fields",
    "array": "a list",
    "null": "nothing",
}


def _explain(error: ValidationError, prefix: FieldPath, root: Any) -> list[tuple[FieldPath, str]]:
    path: FieldPath = (*prefix, *error.absolute_path)
    keyword = str(error.validator)
    instance: Any = error.instance
    expected: Any = error.validator_value
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    hint = schema.get("x-hint")
    if "propertyNames" in error.relative_schema_path:
        key = instance
        return [((*path, key), f"the name '{key}' is not valid: expected {hint or 'a valid name'}")]
    if keyword == "additionalProperties" and isinstance(instance, Mapping):
        allowed = sorted(schema.get("properties", {}))
        found = []
        for key in instance:
            if key in schema.get("properties", {}):
                continue
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            if close:
                found.append(
                    ((*path, key), f"unknown field; did you mean '{_dotted((*path, close[0]))}'?")
                )
            else:
                found.append(
                    ((*path, key), f"unknown field; allowed fields here: {', '.join(allowed)}")
                )
        return found
    if keyword == "required":
        missing = [name for name in expected if name not in instance]
        return [((*path, name), "missing required field") for name in missing]
    value = _show(instance)
    if keyword == "type":
        types = expected if isinstance(expected, list) else [expected]
        names = [TYPE_NAMES.get(str(t), str(t)) for t in types]
        wanted = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        advice = f"; write {hint}" if hint else ""
        return [(path, f"expected {wanted}, got {_describe(instance)}{advice}")]
    if keyword in {"pattern", "format"}:
        return [
            (
                path,
                f"{value} is not valid: expected {hint or f'to match {expected}'}",
            )
        ]
    if keyword == "enum":
        options = [str(option) for option in expected]
        message = f"{value} is not one of {', '.join(options)}"
        close = difflib.get_close_matches(str(instance), options, n=1)
        return [(path, message + (f"; did you mean '{close[0]}'?" if close else ""))]
    if keyword in {"minimum", "exclusiveMinimum"}:
        return [(path, f"{value} is too small: the minimum is {expected}")]
    if keyword in {"maximum", "exclusiveMaximum"}:
        return [(path, f"{value} is too large: the maximum is {expected}")]
    if keyword == "uniqueItems" and isinstance(instance, list):
        seen: list[Any] = []
        for item in instance:
            if item in seen:
                return [(path, f"{_show(item)} is listed more than once")]
            seen.append(item)
    if keyword == "maxProperties" and expected == 0:
        return [(path, "takes no fields here")]
    return [(path, error.message)]


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, str):
        return f"the string {_show(value)}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


def _show(value: Any) -> str:
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return f"'{text}'"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Mapping | list):
        return _describe(value)
    return str(value)


def _dotted(path: Sequence[str | int]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _split_path(dotted: str) -> FieldPath:
    parts: list[str | int] = []
    for piece in dotted.split("."):
        name, *indices = piece.split("[")
        if name:
            parts.append(name)
        parts.extend(int(index.rstrip("]")) for index in indices if index.rstrip("]").isdigit())
    return tuple(parts)


def _format(manifest: Manifest, problems: Iterable[tuple[FieldPath, str]]) -> list[str]:
    ordered = []
    for path, message in problems:
        location = manifest.location(path) if path else None
        if message == "missing required field":
            parent = manifest.location(path[:-1]) if len(path) > 1 else None
            where = f" ({parent.describe()})" if parent and parent.describe() else ""
            text = f"missing required field '{_dotted(path)}'{where}"
            line = parent.line if parent and parent.line else 0
        elif message.startswith("unknown field;"):
            where = f" ({location.describe()})" if location and location.describe() else ""
            text = (
                f"unknown field '{_dotted(path)}'{where}: {message.removeprefix('unknown field; ')}"
            )
            line = location.line if location and location.line else 0
        else:
            where = f" ({location.describe()})" if location and location.describe() else ""
            text = f"field '{_dotted(path)}'{where}: {message}"
            line = location.line if location and location.line else 0
        ordered.append((line, text))
    seen = set()
    result = []
    for _, text in sorted(ordered, key=lambda item: item[0]):
        if text not in seen:
            seen.add(text)
            result.append(text)
    return result
