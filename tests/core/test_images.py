"""The image builder's command line and settings (its builds run in tests/plugins/docker_infra)."""

from __future__ import annotations

from pathlib import Path

import pytest

from racetrack_core.errors import RacetrackError
from racetrack_core.images import BuilderSettings, ImageBuilder
from racetrack_core.infrastructure import DeployError, JobSpec
from racetrack_core.recipes import ImageContext
from racetrack_core.registry import JobType


def spec(tmp_path: Path, **changes: object) -> JobSpec:
    fields: dict[str, object] = {
        "name": "primer",
        "version": "1.2.3",
        "manifest": {},
        "job_type": JobType("bare", "1.0.0"),
        "workspace": tmp_path,
        "env": {},
        "deployment_id": "dep9",
        "deployment_timestamp": 1,
        "state_dir": tmp_path / "state",
        **changes,
    }
    return JobSpec(**fields)  # type: ignore[arg-type]


def test_secrets_go_as_secret_files_and_never_as_build_arguments(tmp_path: Path) -> None:
    builder = ImageBuilder(BuilderSettings(), tmp_path / "builds")
    context = ImageContext(
        directory=tmp_path / "ctx",
        base_image="python:3.11-slim",
        port=7000,
        build_args={"PLAIN": "1"},
        secrets={"build_secrets": tmp_path / "s" / "build_secrets"},
    )
    the_spec = spec(tmp_path, build_secrets={"TOKEN": "hunter2-secret"}, no_cache=True)
    command = builder.command(the_spec, context, builder.tag_of(the_spec))
    assert command[:2] == ["/usr/bin/docker", "build"]
    assert "hunter2-secret" not in " ".join(command)
    assert command[command.index("--secret") + 1] == (
        f"id=build_secrets,src={tmp_path / 's' / 'build_secrets'}"
    )
    assert command[command.index("--build-arg") + 1] == "PLAIN=1"
    assert command.count("--build-arg") == 1
    assert "--no-cache" in command
    labels = {command[i + 1] for i, arg in enumerate(command) if arg == "--label"}
    assert labels == {
        "racetrack.job=primer",
        "racetrack.version=1.2.3",
        "racetrack.deployment=dep9",
        "racetrack.deployment-timestamp=1",
    }
    assert builder.tag_of(the_spec) == "racetrack-job/primer:1.2.3-dep9"
    assert command[-1] == str(tmp_path / "ctx")


def test_a_job_type_without_an_image_recipe_is_refused(tmp_path: Path) -> None:
    builder = ImageBuilder(BuilderSettings(), tmp_path / "builds")
    with pytest.raises(DeployError, match=r"job type 'bare:1\.0\.0' offers no image recipe"):
        builder.build(spec(tmp_path), lambda line: None)


def test_settings_name_the_setting_that_is_wrong() -> None:
    with pytest.raises(RacetrackError, match=r"targets.docker.build: unknown setting 'cli'"):
        BuilderSettings.from_mapping({"cli": "/bin/docker"}, "targets.docker.build")
    with pytest.raises(RacetrackError, match=r"targets.docker.build.base_images: give a mapping"):
        BuilderSettings.from_mapping({"base_images": ["python"]}, "targets.docker.build")
    settings = BuilderSettings.from_mapping(
        {"ca_bundle": "/etc/ssl/certs/ca-certificates.crt", "base_images": {"a": "b"}}, "x"
    )
    assert settings.build.ca_bundle == Path("/etc/ssl/certs/ca-certificates.crt")
    assert settings.build.base_image("a") == "b"
    assert settings.build.base_image("python:3.12-slim") == "python:3.12-slim"
