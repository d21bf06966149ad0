"""``racetrack validate --fix``: rewrite a manifest file in today's spellings, in place.

The file is read and written with ruamel.yaml's round trip, so comments, key order, quotes and
indentation stay as they were; only the older fields of :mod:`racetrack_core.manifest_spellings`
change. A field is renamed where it stands (``lang:`` becomes ``jobtype:`` on the same line),
settings of a second job-type section move into ``jobtype_extra``, and ignored fields
(``image_type: docker``, ``docker:`` of a job type that never read it) are removed. A
conflict (``lang`` and ``jobtype`` that disagree) is left for a person: nothing is written.
Running it again changes nothing.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken

from racetrack_core.errors import ManifestError
from racetrack_core.manifest import Problem, parse_manifest
from racetrack_core.manifest_spellings import (
    DOCKER_SECTION_READER,
    IMAGE_TYPE,
    IMAGE_TYPE_VALUE,
    LEGACY_JOBTYPE,
    LEGACY_SECTIONS,
    job_type_name,
    modernize,
)


@dataclass
class Fix:
    """What ``fix_text`` did: the new text and one sentence per change."""

    text: str
    changes: list[str] = field(default_factory=list)


def fix_file(path: Path) -> Fix:
    """Rewrite the manifest file at ``path`` in current spellings; return what changed.

    Raise ManifestError (and leave the file as it was) when a conflict needs a person.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError([f"cannot read {path}: {exc.strerror}"]) from None
    fix = fix_text(text, source=str(path))
    if fix.changes:
        temporary = path.with_name(f".{path.name}.fix")
        temporary.write_text(fix.text, encoding="utf-8")
        temporary.replace(path)
    return fix


def fix_text(text: str, source: str | None = None) -> Fix:
    """``text`` with its older spellings rewritten; comments and order kept."""
    parse_manifest(text, source=source, base_dir=Path("."))  # the loader's checks and limits
    indent, offset = _guess_indent(text)
    yaml = YAML(typ="rt", pure=True)
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=indent, sequence=offset + 2, offset=offset)
    root = yaml.load(text)
    if not isinstance(root, CommentedMap):
        return Fix(text)
    checked = modernize(_plain(root))
    extra = root.get("jobtype_extra")
    if any(key in root for key in LEGACY_SECTIONS) and not isinstance(extra, (dict, type(None))):
        checked.problems.append(
            Problem(
                "jobtype_extra",
                "is not a mapping, so the older sections cannot move into it: make it one",
            )
        )
    if checked.problems:
        raise ManifestError(
            [f"field '{found.field}': {found.message}" for found in checked.problems]
            + ["--fix changed nothing: settle the conflict above first"],
            source=source,
        )
    changes: list[str] = []
    _fix_lang(root, changes)
    _fix_sections(root, changes)
    _fix_image_type(root, changes)
    if not changes:
        return Fix(text)
    buffer = io.StringIO()
    yaml.dump(root, buffer)
    return Fix(buffer.getvalue(), changes)


def _guess_indent(text: str) -> tuple[int, int]:
    """How the file indents a nested mapping, and how far a list's dash is indented."""
    mapping = offset = None
    lines = [line for line in text.splitlines() if line.strip() and line.lstrip()[0] != "#"]
    for before, line in itertools.pairwise(lines):
        step = (len(line) - len(line.lstrip())) - (len(before) - len(before.lstrip()))
        if not before.rstrip().endswith(":") or step < 0:
            continue
        if line.lstrip().startswith("- "):
            offset = step if offset is None else offset
        elif step > 0:
            mapping = step if mapping is None else mapping
    return mapping or 2, offset or 0


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _rename(node: CommentedMap, old: str, new: str) -> None:
    """Rename a key where it stands, with its comments."""
    position = list(node).index(old)
    value = node[old]
    comment = node.ca.items.pop(old, None)
    del node[old]
    node.insert(position, new, value)
    if comment is not None:
        node.ca.items[new] = comment


def _remove(node: CommentedMap, key: str, tail: str = "") -> None:
    """Remove a key; comment lines written after its value stay where they were."""
    keys = list(node)
    position = keys.index(key)
    following = _take_following(node, key) + tail
    node.ca.items.pop(key, None)
    del node[key]
    if not following:
        return
    if position > 0:
        _add_following(node, keys[position - 1], following)
    else:
        lines = [line.removeprefix("#").removeprefix(" ") for line in following.splitlines()]
        node.yaml_set_start_comment("\n".join(line for line in lines if line))


def _split(value: str) -> tuple[str, str]:
    """A comment token's text as (end-of-line comment with its newline, whole lines after)."""
    if value.startswith("#"):
        head, _, rest = value.partition("\n")
        return head + "\n", rest
    return "", value.removeprefix("\n")


def _last_entry(node: Any, key: Any) -> tuple[Any, Any]:
    """The container and key whose comment ends the block of ``node[key]``."""
    value = node[key]
    while isinstance(value, (CommentedMap, CommentedSeq)) and len(value):
        node, key = value, (list(value)[-1] if isinstance(value, CommentedMap) else len(value) - 1)
        value = node[key]
    return node, key


def _take_following(node: Any, key: Any) -> str:
    """Take the whole comment lines that follow ``node[key]``'s block, keeping its EOL comment."""
    holder, last = _last_entry(node, key)
    slot = _slot(holder)
    entry = holder.ca.items.get(last)
    if not entry or entry[slot] is None:
        return ""
    eol, following = _split(entry[slot].value)
    if eol:
        entry[slot].value = eol
    else:
        entry[slot] = None
    return following


def _slot(container: Any) -> int:
    """Where ruamel keeps the comment after an entry: a list item's, or a mapping key's."""
    return 0 if isinstance(container, CommentedSeq) else 2


def _add_following(node: Any, key: Any, text: str) -> None:
    """Put whole comment lines after ``node[key]``'s block."""
    if not text:
        return
    holder, last = _last_entry(node, key)
    slot = _slot(holder)
    entry = holder.ca.items.setdefault(last, [None, None, None, None])
    if entry[slot] is None:
        entry[slot] = CommentToken("\n" + text, CommentMark(0), None)
    else:
        eol, following = _split(entry[slot].value)
        entry[slot].value = (eol or "\n") + following + text


def _fix_lang(root: CommentedMap, changes: list[str]) -> None:
    if LEGACY_JOBTYPE not in root:
        return
    if "jobtype" in root:
        _remove(root, LEGACY_JOBTYPE)
        changes.append("removed 'lang': 'jobtype' says the same")
        return
    _rename(root, LEGACY_JOBTYPE, "jobtype")
    changes.append(f"renamed 'lang' to 'jobtype' ({root['jobtype']})")


def _fix_sections(root: CommentedMap, changes: list[str]) -> None:
    job_type = job_type_name(root)
    for name in [key for key in root if key in LEGACY_SECTIONS]:
        if name == "docker" and job_type not in (None, DOCKER_SECTION_READER):
            _remove(root, name)
            changes.append(f"removed 'docker': job type '{job_type}' never read it")
            continue
        section = root[name]
        if not section:
            _remove(root, name)
            changes.append(f"removed the empty '{name}'")
            continue
        if "jobtype_extra" not in root:
            _rename(root, name, "jobtype_extra")
            changes.append(f"renamed '{name}' to 'jobtype_extra'")
            continue
        keys = list(section)
        extra = root["jobtype_extra"]
        if extra is None:
            extra = root["jobtype_extra"] = CommentedMap()
        section_tail = _take_following(root, name) if keys else ""
        extra_last = list(extra)[-1] if len(extra) else None
        extra_tail = _take_following(extra, extra_last) if extra_last is not None else ""
        moved = []
        for key in keys:
            if key not in extra:
                extra[key] = section[key]
                comment = section.ca.items.get(key)
                if comment is not None:
                    extra.ca.items[key] = list(comment)
                moved.append(str(key))
        if len(extra):
            _add_following(extra, list(extra)[-1], extra_tail)
        _remove(root, name, tail=section_tail)
        what = f"moved {', '.join(moved)} from '{name}' into 'jobtype_extra'" if moved else ""
        changes.append(what or f"removed '{name}': 'jobtype_extra' has its settings already")


def _fix_image_type(root: CommentedMap, changes: list[str]) -> None:
    if root.get(IMAGE_TYPE) == IMAGE_TYPE_VALUE:
        _remove(root, IMAGE_TYPE)
        changes.append(f"removed '{IMAGE_TYPE}: {IMAGE_TYPE_VALUE}': it means nothing here")
