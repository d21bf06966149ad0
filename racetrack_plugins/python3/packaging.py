"""Packaging the python3 wrapper, shared by every recipe of the job type.

The wrapper (``wrapper/``, the ``racetrack_job_wrapper`` package) stands alone: recipes copy it
next to a job, with its runtime dependencies pinned to the versions the server itself runs, so
that a job's environment or image needs no part of Racetrack. Those dependencies are vendored
into the package (``vendoring.py``), never installed beside the job's requirements, so that a job
may pin any version of the same packages. Also here: reading a job's ``jobtype_extra`` and
locating its requirements file, which both recipes do.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from racetrack_core.infrastructure import DeployError, JobSpec

WRAPPER_SOURCE = Path(__file__).resolve().parent / "wrapper"
VENDORING_SCRIPT = Path(__file__).resolve().parent / "vendoring.py"
WRAPPER_PACKAGE = "racetrack_job_wrapper"
#: What the wrapper imports, plus uvicorn's optional speed-ups when the server has them.
WRAPPER_DEPENDENCIES = ("starlette", "uvicorn", "anyio", "swagger-ui-bundle")
OPTIONAL_SPEEDUPS = ("uvloop", "httptools")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA_MARKER = re.compile(r"\bextra\s*==")
_INCLUDE = re.compile(r"^\s*(?:-r|-c|--requirement|--constraint)[\s=]+(\S+)")


def wrapper_requirements() -> list[str]:
    """The wrapper's direct dependencies, each pinned to the version the server runs."""
    names = [*WRAPPER_DEPENDENCIES, *(name for name in OPTIONAL_SPEEDUPS if _installed(name))]
    return [_pin(name) for name in names]


def wrapper_constraints() -> list[str]:
    """Pins for everything the wrapper's dependencies need, as installed on the server.

    Used as constraints, so that a package that a marker leaves out for the job's Python
    (``typing-extensions`` on newer versions, say) is not installed, only held if it is.
    """
    seen: dict[str, str] = {}
    pending = [name for name in WRAPPER_DEPENDENCIES + OPTIONAL_SPEEDUPS if _installed(name)]
    while pending:
        dist = metadata.distribution(pending.pop())
        name = _canonical(dist.metadata["Name"])
        if name in seen:
            continue
        seen[name] = dist.version
        for requirement in dist.requires or ():
            requirement_name, _, marker = requirement.partition(";")
            found = _NAME.match(requirement_name)
            if found and not _EXTRA_MARKER.search(marker) and _installed(found.group(1)):
                pending.append(found.group(1))
    return [f"{name}=={version}" for name, version in sorted(seen.items())]


def wrapper_source_digest() -> str:
    """A sha256 over the wrapper's source files, their names and contents."""
    digest = hashlib.sha256()
    for path in [*_wrapper_files(), VENDORING_SCRIPT]:
        digest.update(path.relative_to(WRAPPER_SOURCE.parent).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def copy_wrapper(destination: Path) -> Path:
    """Write the wrapper's files into ``destination``; return the package folder.

    ``racetrack_job_wrapper/`` is a standalone copy of the wrapper package; ``requirements.txt``
    and ``constraints.txt`` pin what it needs, which a recipe installs into a folder of its own
    and vendors into the package with ``vendoring.py`` (copied here too, to run in an image
    build). Both the process recipe and the image recipe (``wrapper/`` in the build context)
    use this layout.
    """
    package = destination / WRAPPER_PACKAGE
    for path in _wrapper_files():
        target = package / path.relative_to(WRAPPER_SOURCE)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    (destination / "requirements.txt").write_text(_lines(wrapper_requirements()), "utf-8")
    (destination / "constraints.txt").write_text(_lines(wrapper_constraints()), "utf-8")
    shutil.copyfile(VENDORING_SCRIPT, destination / VENDORING_SCRIPT.name)
    return package


def requirements_digest(path: Path) -> str:
    """A sha256 over a requirements file and the files it includes with ``-r`` or ``-c``."""
    digest = hashlib.sha256()
    pending, seen = [path], set()
    while pending:
        current = pending.pop(0)
        if current in seen:
            continue
        seen.add(current)
        # Names relative to the job's file, so that the workspace's location does not count.
        digest.update(os.path.relpath(current, path.parent).encode() + b"\0")
        if not current.is_file():
            digest.update(b"missing\0")
            continue
        content = current.read_bytes()
        digest.update(content + b"\0")
        for line in content.decode("utf-8", "replace").splitlines():
            found = _INCLUDE.match(line)
            if found:
                pending.append((current.parent / found.group(1)).resolve())
    return digest.hexdigest()


def _installed(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def _pin(name: str) -> str:
    dist = metadata.distribution(name)
    return f"{_canonical(dist.metadata['Name'])}=={dist.version}"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lines(items: Iterable[str]) -> str:
    return "".join(f"{item}\n" for item in items)


def _wrapper_files() -> list[Path]:
    return sorted(
        path
        for path in WRAPPER_SOURCE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


def build_environment() -> dict[str, str]:
    """The server's environment without its own settings (``RACETRACK_*``: passwords, tokens,
    the database URL), for the tools that build a job. Index, proxy and CA settings stay, so
    uv reaches the package index the way the server does."""
    return {name: value for name, value in os.environ.items() if not name.startswith("RACETRACK_")}


def extra(spec: JobSpec) -> Mapping[str, Any]:
    """The manifest's ``jobtype_extra`` (empty when it has none)."""
    found = spec.manifest.get("jobtype_extra") or {}
    return found if isinstance(found, Mapping) else {}


def requirements_file(spec: JobSpec) -> Path | None:
    """The job's requirements file (``jobtype_extra.requirements_path``), if it names one.

    DeployError when the path leaves the job directory.
    """
    relative = extra(spec).get("requirements_path")
    if not relative:
        return None
    workspace = spec.workspace.resolve()
    path = (workspace / str(relative)).resolve()
    if not path.is_relative_to(workspace):
        raise DeployError(
            f"requirements file '{relative}' leaves the job directory; use a path inside it"
        )
    return path


def check_entrypoint(spec: JobSpec) -> None:
    """Raise DeployError unless ``jobtype_extra.entrypoint_path`` is a file inside the job
    directory, so that a job without its code fails with that cause before it is started (and
    does not crash again and again).
    """
    relative = str(extra(spec).get("entrypoint_path") or "")
    workspace = spec.workspace.resolve()
    path = (workspace / relative).resolve()
    if not path.is_relative_to(workspace):
        raise DeployError(
            f"entrypoint file '{relative}' leaves the job directory; use a path inside it"
        )
    if not relative or not path.is_file():
        raise DeployError(
            f"entrypoint file '{relative}' (jobtype_extra.entrypoint_path) not found in the "
            "job's source; add it, or set entrypoint_path to the .py file that holds the job's "
            "class (relative to the job directory)"
        )
