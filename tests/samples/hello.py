"""Test support for the sample plugin ``racetrack-hello-jobtype``: releases of it, built from a
copy of its folder, and its base image (or any recipe's), made as ``racetrack images
bootstrap`` makes it.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest

from racetrack_core.baseimages import BaseImageError, base_image_of
from racetrack_core.baseimages.bootstrap import State, options_from_settings, plan, run
from racetrack_core.baseimages.engine import DockerEngine
from racetrack_core.recipes import DebianBase
from racetrack_core.settings import Settings

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample" / "plugins" / "racetrack-hello-jobtype"
EXAMPLE = SAMPLE / "example"
DOCKER_CLI = Path("/usr/bin/docker")


def import_hello() -> ModuleType:
    """The sample plugin's module, imported from its folder (no install needed)."""
    sys.path.insert(0, str(SAMPLE))
    try:
        import racetrack_hello_jobtype
        import racetrack_hello_jobtype.recipes
    finally:
        sys.path.remove(str(SAMPLE))
    return racetrack_hello_jobtype


def hello_release(root: Path, version: str, job_type_versions: tuple[str, ...]) -> Path:
    """A copy of the sample in ``root/hello-<version>``, as its author would prepare release
    ``version`` registering ``job_type_versions``; return the copy's folder."""
    project = root / f"hello-{version}"
    shutil.copytree(
        SAMPLE, project, ignore=shutil.ignore_patterns("build", "dist", "__pycache__", "*.egg-info")
    )
    pyproject = project / "pyproject.toml"
    text, count = re.subn(r'(?m)^version = ".*"$', f'version = "{version}"', pyproject.read_text())
    assert count == 1, "the sample's pyproject.toml has no version line"
    pyproject.write_text(text, encoding="utf-8")
    module = project / "racetrack_hello_jobtype" / "__init__.py"
    text, count = re.subn(
        r"(?m)^JOB_TYPE_VERSIONS = .*$",
        f"JOB_TYPE_VERSIONS = {job_type_versions!r}",
        module.read_text(),
    )
    assert count == 1, "the sample's module has no JOB_TYPE_VERSIONS line"
    module.write_text(text, encoding="utf-8")
    return project


def hello_base_image(tmp: Path) -> str:
    """The sample's base image in the Docker engine (see :func:`bootstrapped`)."""
    return bootstrapped(import_hello().recipes.BASE_IMAGE, "hello", tmp)


def bootstrapped(base: DebianBase, plugin: str, tmp: Path) -> str:
    """The image an image recipe's ``debian_base`` declares, in the Docker engine: built by
    ``racetrack images bootstrap``'s own functions and settings (the shared root cache); the
    test is skipped when it can be neither found nor built (with ``CI=true`` that fails)."""
    spec = base_image_of(base, plugin)
    options = options_from_settings(Settings.load({"home": str(tmp)}))
    options = replace(options, docker_cli=str(DOCKER_CLI))
    if not DOCKER_CLI.is_file():
        pytest.skip(f"{DOCKER_CLI} (a docker CLI with BuildKit) is not installed")
    try:
        [planned] = plan([spec], options, DockerEngine(str(DOCKER_CLI)))
    except BaseImageError as error:
        pytest.skip(f"cannot plan {spec.name}: {error}")
    if planned.state is State.PRESENT:
        return spec.name
    if os.geteuid() != 0:
        pytest.skip(f"{spec.name} is {planned.state}; building it needs root")
    if planned.state is not State.CACHED and shutil.which(options.debootstrap) is None:
        pytest.skip(f"{spec.name} is {planned.state}; building it needs debootstrap")
    run([spec], options, lambda line: print(line, file=sys.stderr))
    return spec.name
