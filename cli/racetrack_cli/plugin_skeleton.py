"""``racetrack plugin new NAME``: a job-type plugin's project, written from a template.

The template is the folder ``plugin_template/`` next to this module: every file ending in
``.tmpl`` is written without that suffix, with ``{{name}}``, ``{{module}}`` and
``{{distribution}}`` replaced, and a path segment ``MODULE`` renamed to the module. The project
is written into a temporary folder beside the destination and renamed into place, so that a
failure leaves nothing half-written.
"""

from __future__ import annotations

import re
import secrets
import shutil
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

#: A job type's name, as the registry accepts it (``racetrack_core.registry.NAME``).
NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
BUILT_IN_JOB_TYPES = ("python3", "golang", "docker-proxy")
SUFFIX = ".tmpl"


class SkeletonError(Exception):
    """The project cannot be written; the message says why and what to do."""


@dataclass(frozen=True)
class PluginNames:
    """The names a job-type plugin goes by, all made from the job type's name."""

    name: str  # the job type and the plugin (the entry point's name)
    distribution: str  # the name on a package index
    module: str  # the import package

    @classmethod
    def of(cls, name: str) -> PluginNames:
        if not NAME.fullmatch(name) or len(name) > 40:
            raise SkeletonError(
                f"NAME {name!r} is not a job type name: use lower-case letters, digits and "
                "single hyphens, starting with a letter, at most 40 characters (like 'node-script')"
            )
        if name in BUILT_IN_JOB_TYPES:
            raise SkeletonError(
                f"NAME {name!r} is a built-in job type of Racetrack: choose another name"
            )
        return cls(
            name=name,
            distribution=f"racetrack-{name}-jobtype",
            module=f"racetrack_{name.replace('-', '_')}_jobtype",
        )

    def substitute(self, text: str, where: str) -> str:
        values = {"name": self.name, "distribution": self.distribution, "module": self.module}

        def value(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in values:
                raise SkeletonError(f"the template {where} has an unknown placeholder {key!r}")
            return values[key]

        return PLACEHOLDER.sub(value, text)


def template() -> Traversable:
    """The template folder, inside the installed ``racetrack_cli`` package."""
    return resources.files("racetrack_cli") / "plugin_template"


def write_project(names: PluginNames, destination: Path) -> list[Path]:
    """Write the project into ``destination`` (which must not exist, or be an empty folder);
    return the files written, relative to it."""
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise SkeletonError(
            f"{destination} exists already and is not an empty folder: choose another with "
            "--directory, or remove it"
        )
    parent = destination.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = parent / f".{destination.name}.partial-{secrets.token_hex(4)}"
    staging.mkdir()  # with the umask's mode, as the files (unlike tempfile's private folders)
    try:
        written = _render(template(), staging, Path(), names)
        if destination.exists():
            destination.rmdir()
        staging.rename(destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(written)


def _render(folder: Traversable, out: Path, relative: Path, names: PluginNames) -> list[Path]:
    written = []
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if entry.name == "__pycache__":
            continue
        target_name = names.module if entry.name == "MODULE" else entry.name
        target_name = target_name.replace("MODULE", names.module)
        if entry.is_dir():
            (out / relative / target_name).mkdir()
            written += _render(entry, out, relative / target_name, names)
        elif entry.name.endswith(SUFFIX):
            path = relative / target_name.removesuffix(SUFFIX)
            text = names.substitute(entry.read_text(encoding="utf-8"), str(relative / entry.name))
            (out / path).write_text(text, encoding="utf-8")
            written.append(path)
    return written
