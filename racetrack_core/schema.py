"""The manifest schema: the core JSON Schema composed with what plugins add, and validation.

The core schema lives in ``schema/manifest.schema.json``. Each job type validates the
``jobtype_extra`` section with its own fragment, and plugins may add top-level fields through
``manifest_schema_fragments``. Validation turns every JSON-schema error into one sentence that
names the field path, its line, the offending value and, for a typo, the closest valid name.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator

from racetrack_core import versions
from racetrack_core.errors import ManifestError, NotFoundError, PluginError, RacetrackError
from racetrack_core.events import RESERVED_ENV
from racetrack_core.manifest import Manifest, Problem, dump_yaml
from racetrack_core.manifest_spellings import modernize_manifest
from racetrack_core.plugins import PluginManager
from racetrack_core.quantities import memory_bytes, millicores
from racetrack_core.registry import JobType
from racetrack_core.schema_problems import (
    Finding,
    did_you_mean,
    dotted,
    explain,
    format_problems,
    split_path,
)
from racetrack_core.schema_validator import ManifestValidator

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


def validate_manifest(
    manifest: Manifest, plugins: PluginManager, *, default_target: str | None = None
) -> ValidatedManifest:
    """Validate a loaded manifest against the composed schema and the plugins' own checks.

    The job type must offer a recipe that the infrastructure target accepts: the manifest's
    ``infrastructure_target``, else ``default_target`` (the server's default; None checks only a
    target the manifest names). Return it with defaults filled in and its job type resolved;
    raise ManifestError listing every problem, sorted by line. Older spellings (``lang``,
    ``python:`` ...) are read as their current fields, with a warning each.
    """
    manifest, spelled = modernize_manifest(manifest)
    data = manifest.data
    problems = [Finding(split_path(found.field), found.message) for found in spelled.problems]
    notes: list[Finding] = [
        Finding(split_path(found.field), found.message) for found in spelled.warnings
    ]
    schema = _with_plugin_fields(plugins)
    validator = ManifestValidator(schema)
    for error in validator.iter_errors(data):
        problems.extend(explain(error, ()))

    problems = _drop_explained_missing(problems)
    problems = _drop_after_type_errors(problems)
    job_type = None
    if not any(found.path[:1] == ("jobtype",) for found in problems) and "jobtype" in data:
        job_type, problem = _resolve_job_type(plugins, str(data["jobtype"]))
        if problem:
            problems.append(Finding(("jobtype",), problem))
        elif job_type is not None and (stand_in := _stand_in_note(str(data["jobtype"]), job_type)):
            notes.append(Finding(("jobtype",), stand_in))
    if job_type is not None and isinstance(data.get("jobtype_extra", {}), Mapping):
        extra = data.get("jobtype_extra", {})
        problems.extend(_drop_after_type_errors(_check_extra(job_type, extra)))

    problems.extend(_check_semantics(data, plugins))
    if job_type is not None:
        problems.extend(_check_target(data, plugins, job_type, default_target))
    if job_type is not None and not problems:
        target = _target_name(data, default_target)
        for plugin, call in plugins.implementations("validate_manifest"):
            for found in call(manifest=data, job_type=job_type, target=target) or ():
                if not isinstance(found, Problem):
                    raise PluginError(
                        f"plugin '{plugin}' returned {type(found).__name__} from "
                        "validate_manifest; return racetrack_core.manifest.Problem objects"
                    )
                (notes if found.warning else problems).append(
                    Finding(split_path(found.field), found.message)
                )

    if problems or job_type is None:
        messages = format_problems(manifest, problems) or ["field 'jobtype' is missing"]
        raise ManifestError(messages, source=manifest.source)

    result = copy.deepcopy(data)
    result.setdefault("version", DEFAULT_VERSION)
    if isinstance(result.get("git"), dict):
        result["git"].setdefault("directory", ".")
    return ValidatedManifest(
        data=result,
        job_type=job_type,
        warnings=[
            *manifest.warnings,
            *format_problems(manifest, notes),
            *_target_review(result, plugins, default_target),
        ],
        source=manifest.source,
    )


def _drop_explained_missing(problems: list[Finding]) -> list[Finding]:
    """A typo gives 'unknown field' with a suggestion; don't also report the field as missing."""
    suggested = {found.suggestion for found in problems if found.kind == "unknown"}
    return [
        found
        for found in problems
        if not (found.kind == "missing" and dotted(found.path) in suggested)
    ]


def _drop_after_type_errors(problems: list[Finding]) -> list[Finding]:
    """A value of the wrong type needs one sentence, not one per keyword it also fails."""
    mistyped = {found.path for found in problems if found.kind == "type"}
    return [found for found in problems if found.path not in mistyped or found.kind == "type"]


def _resolve_job_type(plugins: PluginManager, reference: str) -> tuple[JobType | None, str]:
    registry = plugins.job_types
    try:
        return registry.resolve(reference), ""
    except NotFoundError as exc:
        name = reference.partition(":")[0]
        message = str(exc)
        if name not in registry.names():
            message += did_you_mean(name, registry.names())
        return None, message


def _stand_in_note(reference: str, job_type: JobType) -> str:
    """A sentence when ``job_type`` was chosen for a version of the original Racetrack's job
    type (``python3:2.15.1``) that no installed version matches; else an empty one."""
    pattern = reference.partition(":")[2] or "latest"
    if versions.matches(job_type.version, pattern):
        return ""
    return (
        f"job type '{reference}' is a version of the original Racetrack's {job_type.name} job "
        f"type; {job_type.ref} runs its jobs unchanged and is used. Write 'jobtype: "
        f"{job_type.ref}' (or '{job_type.name}:latest') to say so"
    )


def _check_extra(job_type: JobType, extra: Mapping[str, Any]) -> list[Finding]:
    fragment = job_type.extra_schema
    if fragment is None:
        return [
            Finding(
                ("jobtype_extra", key), f"job type '{job_type.name}' takes no jobtype_extra fields"
            )
            for key in extra
        ]
    _check_schema(fragment, f"job type '{job_type.ref}' of plugin '{job_type.plugin}'")
    problems = []
    for error in ManifestValidator(fragment).iter_errors(dict(extra)):
        problems.extend(explain(error, ("jobtype_extra",)))
    return problems


def _target_name(data: Mapping[str, Any], default: str | None) -> str | None:
    """The infrastructure target a manifest goes to: its own, else the server's default."""
    named = data.get("infrastructure_target")
    return named if isinstance(named, str) else default


def _target_review(
    data: Mapping[str, Any], plugins: PluginManager, default: str | None
) -> list[str]:
    """What the chosen target says it will not honour in a valid manifest."""
    named = data.get("infrastructure_target")
    target = named if isinstance(named, str) else default
    return [] if target is None else plugins.infrastructure_targets.review(target, data)


def _check_target(
    data: Mapping[str, Any], plugins: PluginManager, job_type: JobType, default: str | None
) -> list[Finding]:
    """The (job type, target) pair: the target must accept a recipe the job type offers."""
    named = data.get("infrastructure_target")
    target = named if isinstance(named, str) else default
    if target is None:
        return []
    problem = plugins.infrastructure_targets.mismatch(job_type, target)
    if problem is None:
        return []
    field = ("infrastructure_target",) if isinstance(named, str) else ("jobtype",)
    if not isinstance(named, str):
        problem += f" (the server's default target is '{target}')"
    return [Finding(field, problem)]


def _check_semantics(data: Mapping[str, Any], plugins: PluginManager) -> list[Finding]:
    problems: list[Finding] = []
    for section in ("build_env", "runtime_env"):
        env = data.get(section)
        if isinstance(env, Mapping):
            for name in env:
                if name in RESERVED_ENV:
                    problems.append(
                        Finding(
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
                    Finding(
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
            message += did_you_mean(target, targets.names())
            problems.append(Finding(("infrastructure_target",), message))
    return problems


def _memory_bytes(value: Any) -> float | None:
    try:
        return memory_bytes(value, "resources")
    except RacetrackError:
        return None


def _cpu_cores(value: Any) -> float | None:
    try:
        return millicores(value, "resources") / 1000
    except RacetrackError:
        return None
