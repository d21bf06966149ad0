"""The golang sample on the Docker target behind a real ``racetrack up``: deployed and called
with the CLI, its image recipe rendered by the job type, built by the one image builder, run
and called through Pub, every runtime-contract route answering.

The Go builder image (``golang:1.19-bookworm`` in the Dockerfile) is mapped, through the
target's ``build.base_images`` setting, to the image ``test_image.builder_image`` makes from
the host's Go: no registry is needed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
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

        def racetrack(*args: str, stdin: str = "") -> str:
            done = subprocess.run(
                [sys.executable, "-m", "racetrack_cli", *args],
                cwd=SAMPLE, input=stdin, capture_output=True, text=True, timeout=600,
                env={**os.environ, "RACETRACK_CONFIG_DIR": str(home.parent / "cli")},
                check=False,
            )  # fmt: skip
            assert done.returncode == 0, f"racetrack {args}: {done.stderr}\n{server.log()}"
            return done.stdout

        racetrack("set", "remote", server.remote)
        racetrack("login", "--username", "admin", stdin=f"{PASSWORD}\n")
        racetrack("deploy")
        called = racetrack("call", "golang-primer", "/api/v1/perform", '{"number": 7907}')
        assert called == "true\n"
        job = server.api("GET", "/job/golang-primer/0.0.1").json()
        assert job["infrastructure_target"] == "docker"

        answer = server.call("golang-primer", "latest", {"number": 7908})
        assert (answer.status_code, answer.json()) == (200, False)
        assert server.call("golang-primer", "latest", {"number": 7}, token=None).status_code == 401
        base = f"{server.pub}/job/golang-primer/latest"
        with httpx.Client(headers={"X-Racetrack-Auth": server.token}, timeout=10) as client:
            live = client.get(f"{base}/live").json()
            assert live == {"live": True, "deployment_timestamp": job["deployment_timestamp"]}
            assert client.get(f"{base}/ready").json() == {"ready": True}
            assert client.get(f"{base}/health").json()["status"] == "pass"
            assert "requests_started_total" in client.get(f"{base}/metrics").text
            assert "swagger-ui/swagger-ui-bundle.js" in client.get(f"{base}/docs").text
            assert client.get(f"{base}/swagger-ui/swagger-ui-bundle.js").status_code == 200
            assert "/api/v1/perform" in client.get(f"{base}/openapi.json").json()["paths"]

        label = f"{LABEL_HOME}={home_digest(home / 'targets' / 'docker')}"
        [container] = docker("ps", "-q", "--filter", f"label={label}").split()
        image = docker("inspect", "--format", "{{.Config.Image}}", container).strip()
        assert image.startswith(f"{REPOSITORY}/golang-primer:")
        size = json.loads(docker("image", "inspect", image))[0]["Size"]
        assert size < 30 * 1024 * 1024  # the last stage is FROM scratch: the binary alone

        deleted = server.api("DELETE", "/job/golang-primer/0.0.1")
        assert deleted.status_code in (200, 204), deleted.text
        assert docker("ps", "-aq", "--filter", f"label={label}").split() == []
