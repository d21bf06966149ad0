"""Older manifest spellings, from the original Racetrack, and the current fields they mean.

Manifests written for the original Racetrack still use its older fields. Each is read as the
current field it stands for, with a deprecation warning that shows the current spelling:

- ``lang: python3:latest`` is ``jobtype: python3:latest``;
- the job-type sections ``python:``, ``golang:``, ``docker:`` and ``wrapper_properties:`` are
  ``jobtype_extra:`` (``docker:`` only for ``docker-proxy``, the one job type that read it;
  for any other it is ignored, with a warning);
- ``image_type: docker`` says what every container target builds anyway: it is ignored,
  with a warning.

An older field that disagrees with its current spelling (``lang`` and ``jobtype`` with two
values, one ``jobtype_extra`` key set twice to different values) is a problem naming both
fields. :func:`modernize` works on plain data (validation); ``manifest_fix`` rewrites a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from racetrack_core.manifest import FieldPath, Manifest, Problem

#: The older name of ``jobtype``.
LEGACY_JOBTYPE = "lang"
#: Older names of ``jobtype_extra``.
LEGACY_SECTIONS = ("python", "golang", "wrapper_properties", "docker")
#: The one job type that read the ``docker:`` section (its ``dockerfile_path``).
DOCKER_SECTION_READER = "docker-proxy"
#: A field of the original that meant the one thing every container target does.
IMAGE_TYPE = "image_type"
IMAGE_TYPE_VALUE = "docker"
FIX_HINT = " (racetrack validate --fix rewrites the file)"
#: Every older field, with its current spelling (None: no current field, it is dropped).
CURRENT_SPELLING: dict[str, str | None] = {
    LEGACY_JOBTYPE: "jobtype",
    **dict.fromkeys(LEGACY_SECTIONS, "jobtype_extra"),
    IMAGE_TYPE: None,
}


@dataclass
class Modernized:
    """A manifest's data in current spellings, with what the rewrite found."""

    data: dict[str, Any]
    #: Fields read in their current spelling or ignored: the manifest is valid with them.
    warnings: list[Problem] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: Where each moved field was written: current path to the path it had.
    moved: dict[FieldPath, FieldPath] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.warnings or self.problems)


def uses_older_spellings(data: Mapping[str, Any]) -> bool:
    """Whether ``data`` has any field that ``modernize`` rewrites."""
    return any(name in data for name in CURRENT_SPELLING)


def job_type_name(data: Mapping[str, Any]) -> str | None:
    """The job type's name in ``jobtype`` (or ``lang``), without its version."""
    value = data.get("jobtype", data.get(LEGACY_JOBTYPE))
    return value.partition(":")[0] if isinstance(value, str) else None


def modernize(data: Mapping[str, Any]) -> Modernized:
    """``data`` with every older field replaced by its current spelling (keys keep their place)."""
    result = Modernized(data=dict(data))
    if not uses_older_spellings(data):
        return result
    _rename_lang(result)
    _merge_sections(result)
    _drop_image_type(result)
    return result


def modernize_manifest(manifest: Manifest) -> tuple[Manifest, Modernized]:
    """A loaded manifest in current spellings; each moved field keeps its line."""
    done = modernize(manifest.data)
    if not done.changed:
        return manifest, done
    locations = dict(manifest.locations)
    for new_path, old_path in done.moved.items():
        for path, where in manifest.locations.items():
            if path[: len(old_path)] == old_path:
                locations.setdefault((*new_path, *path[len(old_path) :]), where)
    modern = Manifest(
        data=done.data,
        source=manifest.source,
        locations=locations,
        warnings=list(manifest.warnings),
    )
    return modern, done


def _replace_key(data: dict[str, Any], old: str, new: str, value: Any) -> dict[str, Any]:
    """``data`` with ``old`` replaced by ``new: value`` in the same place."""
    return {(new if key == old else key): (value if key == old else v) for key, v in data.items()}


def _rename_lang(result: Modernized) -> None:
    data = result.data
    if LEGACY_JOBTYPE not in data:
        return
    lang = data[LEGACY_JOBTYPE]
    if "jobtype" not in data:
        result.data = _replace_key(data, LEGACY_JOBTYPE, "jobtype", lang)
        result.moved[("jobtype",)] = (LEGACY_JOBTYPE,)
        result.warnings.append(
            Problem(LEGACY_JOBTYPE, f"deprecated, write 'jobtype: {lang}' instead{FIX_HINT}")
        )
        return
    if lang == data["jobtype"]:
        del data[LEGACY_JOBTYPE]
        result.warnings.append(
            Problem(
                LEGACY_JOBTYPE,
                f"deprecated, and it says the same as 'jobtype': remove it{FIX_HINT}",
            )
        )
        return
    result.problems.append(
        Problem(
            LEGACY_JOBTYPE,
            f"'lang' ({lang}) and 'jobtype' ({data['jobtype']}) disagree: 'lang' is the older "
            "spelling of 'jobtype'; keep only 'jobtype' with the job type you mean",
        )
    )


def _merge_sections(result: Modernized) -> None:
    data = result.data
    present = [name for name in data if name in LEGACY_SECTIONS]
    if not present:
        return
    job_type = job_type_name(data)
    extra_written = "jobtype_extra" in data
    current = data.get("jobtype_extra")
    if current is not None and not isinstance(current, Mapping):
        result.problems.append(
            Problem(
                "jobtype_extra",
                f"is not a mapping, so {', '.join(repr(n) for n in present)} cannot move into "
                "it: make it one",
            )
        )
        return
    merged: dict[str, Any] = dict(current) if isinstance(current, Mapping) else {}
    origin = dict.fromkeys(merged, "jobtype_extra")
    taken: list[str] = []
    for name in present:
        section = data[name]
        if name == "docker" and job_type not in (None, DOCKER_SECTION_READER):
            result.warnings.append(
                Problem(
                    name,
                    f"means nothing for job type '{job_type}' (only {DOCKER_SECTION_READER} "
                    f"reads it, as jobtype_extra); it is ignored: remove it{FIX_HINT}",
                )
            )
            continue
        if section is None or (isinstance(section, Mapping) and not section):
            result.warnings.append(
                Problem(
                    name, f"deprecated (an older 'jobtype_extra') and empty: remove it{FIX_HINT}"
                )
            )
            continue
        if not isinstance(section, Mapping):
            result.problems.append(
                Problem(
                    name,
                    f"'{name}' is the older spelling of 'jobtype_extra' and must be a mapping "
                    "of job-type settings (like entrypoint_path: entrypoint.py)",
                )
            )
            continue
        for key, value in section.items():
            if key in merged and merged[key] != value:
                result.problems.append(
                    Problem(
                        f"{name}.{key}",
                        f"{value!r} disagrees with '{origin[key]}.{key}' ({merged[key]!r}): "
                        f"'{name}' is the older spelling of 'jobtype_extra'; set '{key}' once, "
                        "under jobtype_extra",
                    )
                )
                continue
            merged[key] = value
            origin.setdefault(key, name)
            result.moved.setdefault(("jobtype_extra", key), (name, key))
        taken.append(name)
        keys = ", ".join(str(key) for key in section) or "no settings"
        result.warnings.append(
            Problem(
                name,
                f"deprecated, write its settings ({keys}) under 'jobtype_extra:' instead{FIX_HINT}",
            )
        )
    rebuilt: dict[str, Any] = {}
    for key, value in data.items():
        if key in present:
            if not extra_written and key in taken and "jobtype_extra" not in rebuilt:
                rebuilt["jobtype_extra"] = merged
            continue
        if key == "jobtype_extra" and (current is not None or taken):
            value = merged
        rebuilt[key] = value
    result.data = rebuilt


def _drop_image_type(result: Modernized) -> None:
    data = result.data
    if IMAGE_TYPE not in data:
        return
    value = data.pop(IMAGE_TYPE)
    if value == IMAGE_TYPE_VALUE:
        result.warnings.append(
            Problem(
                IMAGE_TYPE,
                "means nothing here: container targets always build Docker (OCI) images and "
                f"the local target builds none; it is ignored: remove it{FIX_HINT}",
            )
        )
        return
    result.problems.append(
        Problem(
            IMAGE_TYPE,
            f"{value!r} is not supported: Racetrack builds Docker (OCI) images only; remove "
            "the field",
        )
    )
