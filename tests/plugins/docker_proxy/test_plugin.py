"""The docker-proxy job type: its fields, the targets that can run it, its build context."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from racetrack_core.infrastructure import DeployError
from racetrack_core.recipes import BuildSettings
from racetrack_plugins.docker_proxy import image

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "sample" / "docker-proxy"


def validate(tmp_path: Path, job_yaml: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "job.yaml").write_text(job_yaml)
    return subprocess.run(
        [sys.executable, "-m", "racetrack_cli", "validate", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "RACETRACK_CONFIG_DIR": str(tmp_path / "config")},
    )


JOB = "name: web\nowner_email: a@example.com\njobtype: docker-proxy:latest\n"


def test_the_local_target_refuses_it_naming_the_targets_that_can(tmp_path: Path) -> None:
    done = validate(tmp_path, JOB + "infrastructure_target: local\n")
    assert done.returncode != 0
    assert "job type 'docker-proxy:1.0.0' cannot run on infrastructure target 'local'" in (
        done.stderr
    )
    assert "Targets that can run it: docker" in done.stderr


def test_its_fields_are_checked(tmp_path: Path) -> None:
    target = JOB + "infrastructure_target: docker\njobtype_extra:\n"
    done = validate(tmp_path, target + "  dockerfile_path: ../Dockerfile\n")
    assert done.returncode != 0
    assert "jobtype_extra.dockerfile_path" in done.stderr
    assert "'../Dockerfile' leaves the job directory" in done.stderr
    done = validate(tmp_path, target + "  user_module_port: 70000\n")
    assert done.returncode != 0
    assert "field 'jobtype_extra.user_module_port' (line 6): 70000 is too large" in done.stderr


def test_the_sample_validates_for_the_docker_target(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "racetrack_cli", "validate", str(SAMPLE),
         "-e", "infrastructure_target=docker"],
        capture_output=True, text=True, check=False,
        env={**os.environ, "RACETRACK_CONFIG_DIR": str(tmp_path / "config")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_the_build_context_holds_the_job_the_proxy_and_the_fitted_dockerfile(
    tmp_path: Path,
) -> None:
    settings = BuildSettings(base_images={"golang:1.19-bookworm": "local/go:1"})
    dockerfile = image.write_context(SAMPLE, {}, tmp_path / "ctx", settings)
    context = tmp_path / "ctx"
    assert (context / "server.py").is_file()
    assert (context / ".racetrack-proxy" / "outer.go").is_file()
    assert (context / ".racetrack-proxy" / "swagger-ui" / "swagger-ui-bundle.js").is_file()
    text = dockerfile.read_text()
    assert "FROM racetrack/python3-base:bookworm AS racetrack-job" in text
    assert "FROM local/go:1 AS racetrack-proxy-build" in text


def test_a_missing_dockerfile_names_the_field(tmp_path: Path) -> None:
    manifest = {"jobtype_extra": {"dockerfile_path": "docker/Dockerfile"}}
    with pytest.raises(DeployError, match=r"jobtype_extra\.dockerfile_path: no file"):
        image.write_context(SAMPLE, manifest, tmp_path / "ctx", BuildSettings())
