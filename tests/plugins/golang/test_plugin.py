"""The golang plugin's registration and its manifest checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from racetrack_core.manifest import load_manifest
from racetrack_core.plugins import PluginManager
from racetrack_core.recipes import ImageRecipe, ProcessRecipe
from racetrack_core.registry import JobType
from racetrack_core.schema import validate_manifest
from racetrack_plugins import golang

JOB_TYPE = JobType("golang", golang.VERSION, golang.EXTRA_SCHEMA)


def problems(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    found = golang.validate_manifest(manifest=manifest, job_type=JOB_TYPE) or []
    return [(problem.field, problem.message) for problem in found]


def test_the_job_type_offers_a_process_and_an_image_recipe() -> None:
    class Registry:
        def register(self, name: str, version: str, **options: Any) -> None:
            self.options = options

    registry = Registry()
    golang.register_job_types(registry=registry)  # type: ignore[arg-type]
    assert isinstance(registry.options["recipes"].process, ProcessRecipe)
    assert isinstance(registry.options["recipes"].image, ImageRecipe)
    assert set(registry.options["extra_schema"]["properties"]) == {"gomod"}


def test_without_go_the_manifest_is_refused_naming_the_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    [(field, message)] = problems({"name": "x"})
    assert field == "jobtype"
    assert "install Debian's golang-go package" in message
    assert "deploy the job to a container target" in message
    assert problems({"name": "x", "infrastructure_target": "docker"}) == []


def test_a_gomod_outside_the_job_is_refused() -> None:
    assert problems({"jobtype_extra": {"gomod": "../other/go.mod"}})[0][0] == "jobtype_extra.gomod"


def test_other_job_types_are_not_checked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    python3 = JobType("python3", "1.0.0")
    assert golang.validate_manifest(manifest={}, job_type=python3) is None


def test_racetrack_validate_accepts_the_samples(go: str) -> None:
    plugins = PluginManager().load()
    samples = Path(__file__).resolve().parents[3] / "sample"
    for name in ("golang-primer", "golang-vendored"):
        validated = validate_manifest(load_manifest(samples / name / "job.yaml"), plugins)
        assert validated.job_type.name == "golang"
