"""jobtype_extra.python_version on the Docker target: the base image's Python is checked while
building, so a job never runs on another version than the one its manifest names."""

from __future__ import annotations

import pytest

from racetrack_core.infrastructure import DeployError

from .conftest import Jobs

pytestmark = pytest.mark.slow


def test_a_python_version_the_base_image_lacks_fails_the_build_naming_both(jobs: Jobs) -> None:
    # A site that maps python:3.12-slim to the bookworm image (Python 3.11) by mistake.
    driver = jobs.driver(
        build={
            "ca_bundle": "/etc/ssl/certs/ca-certificates.crt",
            "repository": "racetrack-test-job",
            "base_images": {"python:3.12-slim": jobs.base_image},
        }
    )
    manifest = {"jobtype_extra": {"entrypoint_path": "entrypoint.py", "python_version": "3.12"}}
    log: list[str] = []
    with pytest.raises(DeployError) as caught:
        driver.prepare(jobs.spec(manifest=manifest, deployment_id="pv1"), log.append)
    text = "\n".join([str(caught.value), *log])
    assert (
        f"jobtype_extra.python_version is 3.12 but the base image {jobs.base_image} has "
        "Python 3.11." in text
    )


def test_the_python_version_the_base_image_has_builds(jobs: Jobs) -> None:
    manifest = {"jobtype_extra": {"entrypoint_path": "entrypoint.py", "python_version": "3.11"}}
    log: list[str] = []
    jobs.driver().prepare(jobs.spec(manifest=manifest, deployment_id="pv2"), log.append)
    assert any(line.startswith("built image ") for line in log), log
