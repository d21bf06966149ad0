"""The python3 job type's ``jobtype_extra`` options checked against where the job will run.

The original Racetrack's python3 job type had options that mean nothing here, or nothing on
some target: they are accepted with a warning that says so. ``python_version`` must name a
Python that the target has: on the local target an interpreter installed on the server
(never another one in its place); container targets check the base image's Python while
building (see ``Dockerfile.jinja``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from racetrack_core.manifest import Problem

#: Targets that run a job on the server's own interpreters (a process recipe).
PROCESS_TARGETS = ("local",)


def review_options(extra: Mapping[str, Any], target: str | None) -> Iterator[Problem]:
    """Problems and warnings about ``extra`` on ``target`` (None: not known yet)."""
    if extra.get("memray_profiler"):
        yield _warning(
            "memray_profiler",
            "not supported here: the job runs without the memray profiler (the option is ignored)",
        )
    if extra.get("debian_backports"):
        yield _warning(
            "debian_backports",
            "not supported here: system_dependencies come from the base image's own Debian "
            "suite (the option is ignored)",
        )
    if extra.get("check_requirements") is False:
        yield _warning(
            "check_requirements",
            "cannot be switched off here: the job's requirements are always resolved together, "
            "so a conflict always fails the build",
        )
    if target in PROCESS_TARGETS:
        if extra.get("debian_version") is not None:
            yield _warning(
                "debian_version",
                f"means nothing on the {target} target, which runs the job on the server's own "
                "Python (no base image); it applies on container targets",
            )
        version = extra.get("python_version")
        if isinstance(version, str):
            problem = _missing_python(version, target)
            if problem is not None:
                yield problem


def _missing_python(version: str, target: str) -> Problem | None:
    from racetrack_plugins.python3.process import available_pythons, find_python

    if find_python(version) is not None:
        return None
    available = available_pythons()  # slow where many interpreters sit on PATH: only on refusal
    minor = ".".join(version.split(".")[:2])
    exact = (
        f" (a patch version is matched exactly: write '{minor}' for any {minor})"
        if version != minor
        else ""
    )
    return Problem(
        "jobtype_extra.python_version",
        f"Python {version} is not installed on the server of the {target} target{exact}; "
        f"available: {', '.join(available)}. Choose one of those, or ask an admin to install it",
    )


def _warning(option: str, sentence: str) -> Problem:
    return Problem(f"jobtype_extra.{option}", sentence, warning=True)
