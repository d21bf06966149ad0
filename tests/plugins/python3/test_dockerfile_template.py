"""The python3 Dockerfile template, rendered with Jinja2 as a container target will render it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jinja2
import pytest

from racetrack_plugins.python3 import DOCKERFILE_TEMPLATE
from racetrack_plugins.python3.local import copy_wrapper

REPO_ROOT = Path(__file__).resolve().parents[3]
CLASS_DIR = REPO_ROOT / "sample" / "python-class"
FULL_EXTRA = {
    "entrypoint_path": "entrypoint.py",
    "entrypoint_class": "PlanetCatalogue",
    "requirements_path": "requirements.txt",
    "home_page": "/api/v1/guide",
    "max_concurrency": 4,
}


def template() -> jinja2.Template:
    # A Dockerfile, not HTML: escaping would corrupt it.
    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701
    )
    return environment.from_string(DOCKERFILE_TEMPLATE.read_text(encoding="utf-8"))


def render(**extra: Any) -> str:
    return template().render(base_image="racetrack/python3-base:bookworm", extra=extra)


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """``(KEYWORD, arguments)`` pairs, continuation lines joined, comments left out."""
    found: list[tuple[str, str]] = []
    pending = ""
    for line in dockerfile.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).strip().partition(" ")
        found.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the last instruction ends with a backslash"
    return found


def test_the_template_is_the_registered_one(racetrack_plugin_manager) -> None:
    job_type = racetrack_plugin_manager.job_types.resolve("python3:latest")
    assert job_type.dockerfile_template == DOCKERFILE_TEMPLATE


def test_it_renders_an_image_that_runs_the_wrapper_as_a_user() -> None:
    steps = instructions(render(**FULL_EXTRA))
    assert steps[0] == ("FROM", "racetrack/python3-base:bookworm")
    keywords = [keyword for keyword, _ in steps]
    assert ("EXPOSE", "7000") in steps
    assert keywords[-1] == "CMD"
    assert [arguments for keyword, arguments in steps if keyword == "USER"] == ["job"]
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")
    [environment] = [arguments for keyword, arguments in steps if keyword == "ENV"]
    assert "JOB_PORT=7000" in environment.split()
    assert json.loads(steps[-1][1]) == [
        "python", "-m", "racetrack_job_wrapper", "--job-dir", "/job", "--host", "0.0.0.0",  # noqa: S104
        "--entrypoint-path", "entrypoint.py", "--entrypoint-class", "PlanetCatalogue",
        "--home-page", "/api/v1/guide", "--max-concurrency", "4",
    ]  # fmt: skip


def test_build_secrets_are_mounted_for_one_step_and_never_kept() -> None:
    steps = instructions(render(**FULL_EXTRA))
    for keyword, arguments in steps:
        if keyword in {"ENV", "ARG", "LABEL", "COPY", "ADD"}:
            assert "secret" not in arguments.lower(), arguments
            assert "ca_bundle" not in arguments.lower(), arguments
    [install] = [arguments for keyword, arguments in steps if "id=build_secrets" in arguments]
    assert install.startswith("--mount=type=secret,id=build_secrets ")
    assert "--requirement /opt/racetrack/job-requirements.txt" in install
    assert "--constraint /opt/racetrack/wrapper/constraints.txt" in install
    assert not [keyword for keyword, _ in steps if keyword == "ARG"]


def test_optional_fields_are_left_out_and_values_are_quoted() -> None:
    steps = instructions(render(entrypoint_path='odd "name".py'))
    text = "\n".join(arguments for _, arguments in steps)
    assert "job-requirements" not in text
    command = json.loads(steps[-1][1])
    assert command[command.index("--entrypoint-path") + 1] == 'odd "name".py'
    assert "--entrypoint-class" not in command
    assert "--max-concurrency" not in command
    assert command[command.index("--home-page") + 1] == "/docs"


def test_a_missing_base_image_is_an_error_not_an_empty_from() -> None:
    with pytest.raises(jinja2.UndefinedError):
        template().render(extra=FULL_EXTRA)


def test_every_copied_path_is_in_the_documented_build_context(tmp_path: Path) -> None:
    shutil.copytree(CLASS_DIR, tmp_path / "job")
    copy_wrapper(tmp_path / "wrapper")
    for keyword, arguments in instructions(render(**FULL_EXTRA)):
        if keyword != "COPY":
            continue
        sources = (
            json.loads(arguments)[:-1] if arguments.startswith("[") else arguments.split()[:-1]
        )
        for source in sources:
            assert (tmp_path / source).exists(), f"COPY {source}: not in the build context"
