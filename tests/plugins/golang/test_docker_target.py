"""The golang sample on the Docker target behind a real ``racetrack up``: its image recipe
rendered by the job type, built by the one image builder, run and called through Pub.

The Go builder image (``golang:1.19-bookworm`` in the Dockerfile) is mapped, through the
target's ``build.base_images`` setting, to the image ``test_image.builder_image`` makes from
the host's Go: no registry is needed.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from racetrack_core.testing.server import QUICK_ENV, RacetrackServer
from racetrack_plugins.docker_infra.containers import LABEL_HOME, home_digest
from racetrack_plugins.golang.image import DEFAULT_BUILDER_IMAGE
from tests.plugins.docker_infra.conftest import DOCKER_CLI, REPOSITORY, settings_for

from .conftest import SAMPLE
from .test_image import builder_image

__all__ = ["builder_image"]  # a fixture of test_image, used here too

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
PASSWORD = "the golang docker test's admin password"


def docker(*arguments: str) -> str:
    done = subprocess.run([str(DOCKER_CLI), *arguments], capture_output=True, text=True)
    return done.stdout


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A server home whose Docker target builds Go FROM the local builder image; the
    containers and job images of that target are removed afterwards."""
    home = tmp_path / "home"
    home.mkdir()
    yield home
    label = f"{LABEL_HOME}={home_digest(home / 'targets' / 'docker')}"
    for container in docker("ps", "-aq", "--filter", f"label={label}").split():
        docker("rm", "-f", container)
    for image in docker("images", "--format", "{{.Repository}}:{{.Tag}}").split():
        if image.startswith(f"{REPOSITORY}/golang-primer:"):
            docker("image", "rm", "-f", image)


def test_the_golang_sample_runs_on_the_docker_target(builder_image: str, home: Path) -> None:
    settings = settings_for("unused by golang")
    settings["build"]["base_images"] = {DEFAULT_BUILDER_IMAGE: builder_image}
    (home / "config.yaml").write_text(json.dumps({"targets": {"docker": settings}}))
    env = {**QUICK_ENV, "RACETRACK_INFRASTRUCTURE_TARGET": "docker"}
    with RacetrackServer(home, admin_password=PASSWORD, env=env) as server:
        server.login("admin", PASSWORD)
        record = server.deploy_folder(SAMPLE)
        assert record["status"] == "done", f"{record.get('error')}\n{server.log()}"
        job = server.api("GET", "/job/golang-primer/0.0.1").json()
        assert job["infrastructure_target"] == "docker"

        answer = server.call("golang-primer", "latest", {"number": 7907})
        assert (answer.status_code, answer.json()) == (200, True)
        answer = server.call("golang-primer", "latest", {"number": 7908})
        assert (answer.status_code, answer.json()) == (200, False)

        label = f"{LABEL_HOME}={home_digest(home / 'targets' / 'docker')}"
        [container] = docker("ps", "-q", "--filter", f"label={label}").split()
        image = docker("inspect", "--format", "{{.Config.Image}}", container).strip()
        assert image.startswith(f"{REPOSITORY}/golang-primer:")
        size = json.loads(docker("image", "inspect", image))[0]["Size"]
        assert size < 30 * 1024 * 1024  # the last stage is FROM scratch: the binary alone

        deleted = server.api("DELETE", "/job/golang-primer/0.0.1")
        assert deleted.status_code in (200, 204), deleted.text
        assert docker("ps", "-aq", "--filter", f"label={label}").split() == []
