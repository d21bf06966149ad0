"""Reading ``job.yaml``: YAML with line numbers, ``extends`` and ``-e key.sub=value`` overrides.

Loading gives a :class:`Manifest`: the merged data as plain Python values plus where each field
came from, so that every validation error can name its line. Validation against the composed
schema lives in :mod:`racetrack_core.schema`.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from racetrack_core.errors import ManifestError
from racetrack_core.manifest_limits import (
    PLAIN_SCALARS,
    TOO_DEEP,
    check_size,
    check_text,
)

MANIFEST_NAME = "job.yaml"
LEGACY_MANIFEST_NAME = "fatman.yaml"
FieldPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest: the field's dotted path and a sentence about it.

    ``warning``: the manifest is still valid (a field that is ignored, or means nothing on the
    chosen target); the sentence is shown as a warning instead of refusing the manifest.
    """

    field: str
    message: str
    warning: bool = False


@dataclass(frozen=True)
class Location:
    """Where a field was written: a file (None for the main manifest) and a 1-based line."""

    file: str | None
    line: int | None

    def describe(self) -> str:
        if self.line is None:
            return f"from {self.file}" if self.file else ""
        if self.file:
            return f"{self.file} line {self.line}"
        return f"line {self.line}"


@dataclass
class Manifest:
    """A loaded manifest: merged data, where each field came from, and loading warnings."""

    data: dict[str, Any]
    source: str | None = None
    locations: dict[FieldPath, Location] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def location(self, path: Sequence[str | int]) -> Location | None:
        """Where a field (or, failing that, its nearest written parent) came from."""
        path = tuple(path)
        while path:
            if path in self.locations:
                return self.locations[path]
            path = path[:-1]
        return self.locations.get((), None)

    def to_yaml(self) -> str:
        """The merged manifest as YAML, keys in the order they were written."""
        return dump_yaml(self.data)


def find_manifest(directory: Path) -> Path:
    """The manifest file of a job directory: ``job.yaml``, else the older ``fatman.yaml``."""
    for name in (MANIFEST_NAME, LEGACY_MANIFEST_NAME):
        candidate = directory / name
        if candidate.is_file():
            return candidate
    raise ManifestError(
        [f"no {MANIFEST_NAME} in {directory}: run this in a job directory, or pass its path"]
    )


def load_manifest(path: Path | str, extra_vars: Iterable[str] = ()) -> Manifest:
    """Load a manifest file (or a job directory's ``job.yaml``), resolving ``extends``.

    ``extra_vars`` are ``key.sub=value`` overrides applied after the merge; values are read as
    YAML scalars, so ``replicas=2`` is a number. Raise ManifestError on any problem.
    """
    path = Path(path)
    ignored_legacy = path.is_dir() and all(
        (path / name).is_file() for name in (MANIFEST_NAME, LEGACY_MANIFEST_NAME)
    )
    if path.is_dir():
        path = find_manifest(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError([f"cannot read {path}: {exc.strerror}"]) from None
    manifest = parse_manifest(text, source=str(path), base_dir=path.parent, extra_vars=extra_vars)
    if path.name == LEGACY_MANIFEST_NAME:
        manifest.warnings.append(
            f"{LEGACY_MANIFEST_NAME} is deprecated: rename it to {MANIFEST_NAME}"
        )
    if ignored_legacy:
        manifest.warnings.append(
            f"both {MANIFEST_NAME} and {LEGACY_MANIFEST_NAME} are in {path.parent}: "
            f"{MANIFEST_NAME} is used and {LEGACY_MANIFEST_NAME} ignored; delete "
            f"{LEGACY_MANIFEST_NAME}"
        )
    return manifest


def parse_manifest(
    text: str,
    source: str | None = None,
    base_dir: Path | None = None,
    extra_vars: Iterable[str] = (),
) -> Manifest:
    """Parse manifest text; ``base_dir`` is where a relative ``extends`` path is looked up."""
    root = _parse_yaml(text, source)
    data = _plain_within_limit(root, source)
    locations: dict[FieldPath, Location] = {}
    _record_locations(root, (), None, locations)
    manifest = Manifest(data=data, source=source, locations=locations)
    if "extends" in data and data["extends"] is None:
        del data["extends"]  # racetrack-client writes "extends": null after merging
    if "extends" in data:
        if base_dir is None:
            raise ManifestError([EXTENDS_NOT_HERE], source=source)
        _apply_extends(manifest, base_dir)
    for assignment in extra_vars:
        _apply_extra_var(manifest, assignment)
    return manifest


EXTENDS_NOT_HERE = (
    "field 'extends' is resolved by the client that reads the manifest file, never by the "
    "server: send the merged manifest (racetrack deploy does), with no 'extends' or with null"
)


def received_manifest(data: Mapping[str, Any]) -> Manifest:
    """A manifest that a client sent as data (``POST /deploy``), not read from a file.

    ``extends`` is refused: a path in it would be resolved on the server, against its own
    files. ``"extends": null``, which racetrack-client sends after merging, is dropped.
    """
    plain = dict(data)
    if "extends" in plain:
        if plain["extends"] is not None:
            raise ManifestError([EXTENDS_NOT_HERE])
        del plain["extends"]
    return Manifest(data=plain)


def dump_yaml(data: Mapping[str, Any]) -> str:
    """Write plain data as block-style YAML."""
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    buffer = io.StringIO()
    yaml.dump(dict(data), buffer)
    return buffer.getvalue()


def _parse_yaml(text: str, source: str | None) -> CommentedMap:
    check_text(text, source)
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        root = yaml.load(text)
    except DuplicateKeyError as exc:
        key = re.search(r'key "(.+?)"', str(exc.problem))
        first = exc.context_mark.line + 1 if exc.context_mark else None
        where = f" (line {exc.problem_mark.line + 1})" if exc.problem_mark else ""
        name = key[1] if key else "?"
        also = f"; it is set already on line {first}" if first else ""
        raise ManifestError([f"duplicate field '{name}'{where}{also}"], source=source) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1})" if mark is not None else ""
        what = exc.problem or exc.context or "malformed YAML"
        raise ManifestError([f"YAML syntax error{where}: {what}"], source=source) from None
    except YAMLError as exc:
        raise ManifestError([f"YAML syntax error: {exc}"], source=source) from None
    except RecursionError:
        raise ManifestError([TOO_DEEP], source=source) from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        # ruamel's constructors of tagged and date-like values (``!!float ""``, ``2023-02-30``)
        raise ManifestError(
            [
                f"a value cannot be read ({type(exc).__name__}: {exc}): put quotes around it "
                "to keep it a string"
            ],
            source=source,
        ) from None
    if root is None:
        raise ManifestError(
            ["the file is empty: a manifest needs at least name, owner_email and jobtype"],
            source=source,
        )
    if not isinstance(root, CommentedMap):
        raise ManifestError(
            [
                f"the top level must be a mapping of fields (name: ..., jobtype: ...), "
                f"not a {_kind(root)}"
            ],
            source=source,
        )
    return root


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def _plain_within_limit(root: Any, source: str | None) -> Any:
    """``_to_plain(root)``, refused past the bounds of :mod:`racetrack_core.manifest_limits`."""
    check_size(root, [0], source)
    return _to_plain(root)


def _to_plain(value: Any) -> Any:
    """Turn ruamel's commented containers and scalars into plain dicts, lists and scalars."""
    if isinstance(value, Mapping):
        return {_to_plain(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_plain(item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


def _record_locations(
    node: Any, path: FieldPath, file: str | None, out: dict[FieldPath, Location]
) -> None:
    if isinstance(node, CommentedMap):
        out.setdefault(path, Location(file, node.lc.line + 1))
        for key in node:
            key_line = node.lc.key(key)[0] + 1
            out[(*path, key)] = Location(file, key_line)
            _record_locations(node[key], (*path, key), file, out)
    elif isinstance(node, CommentedSeq):
        for index in range(len(node)):
            out[(*path, index)] = Location(file, node.lc.item(index)[0] + 1)
            _record_locations(node[index], (*path, index), file, out)


def _apply_extends(manifest: Manifest, base_dir: Path | None) -> None:
    reference = manifest.data.pop("extends")
    where = manifest.location(("extends",))
    line = f" ({where.describe()})" if where and where.line else ""
    if not isinstance(reference, str) or not reference:
        raise ManifestError([f"field 'extends'{line}: expected a relative path to a base manifest"])
    if Path(reference).is_absolute():
        raise ManifestError(
            [
                f"field 'extends'{line}: '{reference}' is absolute; "
                "use a path relative to the manifest"
            ]
        )
    base_path = (base_dir or Path.cwd()) / reference
    try:
        text = base_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(
            [f"field 'extends'{line}: cannot read base manifest '{reference}': {exc.strerror}"]
        ) from None
    base_root = _parse_yaml(text, reference)
    base = _plain_within_limit(base_root, reference)
    if "extends" in base:
        raise ManifestError(
            [f"base manifest '{reference}' has an 'extends' of its own; only one level is allowed"]
        )
    base_locations: dict[FieldPath, Location] = {}
    _record_locations(base_root, (), reference, base_locations)
    base_locations.update(manifest.locations)
    manifest.locations = base_locations
    manifest.data = deep_merge(base, manifest.data)


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Merge two mappings: nested mappings merge recursively, any other overlay value wins."""
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _apply_extra_var(manifest: Manifest, assignment: str) -> None:
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise ManifestError(
            [f"extra variable '{assignment}' is not KEY=VALUE; write it like -e version=1.2.3"]
        )
    parts = key.strip().split(".")
    if any(not part for part in parts):
        raise ManifestError([f"extra variable '{assignment}': '{key}' has an empty part"])
    value = _parse_scalar(raw)
    target = manifest.data
    for depth, part in enumerate(parts[:-1]):
        child = target.get(part)
        if child is None:
            child = target[part] = {}
        if not isinstance(child, dict):
            prefix = ".".join(parts[: depth + 1])
            raise ManifestError(
                [f"extra variable '{assignment}': field '{prefix}' is not a mapping"]
            )
        target = child
    target[parts[-1]] = value
    manifest.locations[tuple(parts)] = Location(f"-e {key.strip()}", None)


def _parse_scalar(raw: str) -> Any:
    if raw == "":
        return ""
    try:
        value = YAML(typ="safe", pure=True).load(raw)
    except (YAMLError, ValueError, TypeError):
        return raw  # not a YAML scalar (``!!int x``, ``2023-02-30``): the text as written
    if not isinstance(value, (*PLAIN_SCALARS, list, dict)):
        return raw
    return _to_plain(value) if value is not None else None
