"""Fixtures for the Docker target's tests: a real engine, a base image without a registry.

The base image is the one ``racetrack images bootstrap`` makes when the engine has it, else one
imported from the Debian root at ``/var/cache/racetrack-dev/py-root`` (debootstrap with
python3, python3-venv and ca-certificates), tagged by a digest of how that root was made, so it
is imported once per root. Tests skip without an engine or a base image (with ``CI=true`` a
skip fails the run). Every container and image a test makes carries labels (the driver's home digest,
the ``racetrack-test-job`` repository) and is removed by those labels afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx
import pytest

from racetrack_core.images import LABEL_JOB
from racetrack_core.infrastructure import JobSpec, TargetContext
from racetrack_core.lifecycle.ports import DatabasePorts
from racetrack_core.registry import JobType
from racetrack_core.storage.database import connect, migrate
from racetrack_plugins.docker_infra import DockerDriver
from racetrack_plugins.docker_infra.containers import LABEL_HOME, home_digest
from racetrack_plugins.python3 import RECIPES

#: The image ``racetrack images bootstrap`` builds for python3 (the baseimages work).
BOOTSTRAPPED = "racetrack/python3-base:bookworm"
ROOT = Path("/var/cache/racetrack-dev/py-root")
ROOT_LOG = Path("/var/cache/racetrack-dev/debootstrap.log")
DOCKER_CLI = Path("/usr/bin/docker")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
REPOSITORY = "racetrack-test-job"
REPO = Path(__file__).resolve().parents[3]


def _skip_or_fail(reason: str) -> None:
    """Skip (with CI=true, tests/conftest.py turns any skip into a failed run)."""
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except docker.errors.DockerException as error:
        _skip_or_fail(f"no Docker engine: {error}")
    if not DOCKER_CLI.is_file():
        _skip_or_fail(f"{DOCKER_CLI} (a docker CLI with BuildKit) is not installed")
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_client: Any) -> str:
    """The python3 base image the builds start FROM.

    ``RACETRACK_TEST_BASE_IMAGE`` if set; else the image that ``racetrack images bootstrap``
    makes, when the engine has it; else one imported from the Debian root, once per root.
    """
    chosen = os.environ.get("RACETRACK_TEST_BASE_IMAGE") or BOOTSTRAPPED
    try:
        docker_client.images.get(chosen)
        return chosen
    except docker.errors.ImageNotFound:
        if os.environ.get("RACETRACK_TEST_BASE_IMAGE"):
            _skip_or_fail(f"RACETRACK_TEST_BASE_IMAGE={chosen} is not in the engine")
    if not ROOT_LOG.is_file() or not ROOT_LOG.read_text().rstrip().endswith("rc 0"):
        _skip_or_fail(f"no finished Debian root at {ROOT} (see {ROOT_LOG})")
    tag = "racetrack-test/py-root:" + hashlib.sha256(ROOT_LOG.read_bytes()).hexdigest()[:12]
    try:
        docker_client.images.get(tag)
    except docker.errors.ImageNotFound:
        with subprocess.Popen(["tar", "-C", str(ROOT), "-c", "."], stdout=subprocess.PIPE) as tar:
            subprocess.run(
                [str(DOCKER_CLI), "import", "-", tag], stdin=tar.stdout, check=True,
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
        assert tar.returncode == 0
    return tag


def settings_for(base_image: str, **changes: Any) -> dict[str, Any]:
    """Driver settings that build FROM the imported root and stop quickly."""
    return {
        "drain_seconds": 0,
        "stop_grace_seconds": 2,
        "build": {
            "ca_bundle": str(CA_BUNDLE),
            "repository": REPOSITORY,
            "base_images": {"python:3.11-slim": base_image},
        },
        **changes,
    }


class Jobs:
    """Drivers on one home, specs of the sample jobs, and loopback HTTP helpers."""

    def __init__(self, root: Path, base_image: str, client: Any) -> None:
        self.home = root / "home"
        self.root = root
        self.base_image = base_image
        self.client = client
        self.build_log: list[str] = []
        self.http = httpx.Client(timeout=5, trust_env=False)
        self.drivers: list[DockerDriver] = []
        self.database = connect(f"sqlite:///{root / 'ports.db'}")
        migrate(self.database)
        #: The record of ports that every driver of these tests shares, as Lifecycles do.
        self.ports = DatabasePorts(self.database, "docker")

    def driver(self, **changes: Any) -> DockerDriver:
        settings = settings_for(self.base_image, **changes)
        driver = DockerDriver(TargetContext(self.home, settings, ports=self.ports))
        self.drivers.append(driver)
        return driver

    def spec(self, sample: str = "python-primer", **changes: Any) -> JobSpec:
        fields: dict[str, Any] = {
            "name": sample.removeprefix("python-"),
            "version": "0.0.1",
            "manifest": {"jobtype_extra": {"entrypoint_path": "entrypoint.py"}},
            "job_type": JobType("python3", "1.0.0", recipes=RECIPES),
            "workspace": REPO / "sample" / sample,
            "env": {},
            "deployment_id": "d1",
            "deployment_timestamp": 100,
            "state_dir": self.root / "state",
            **changes,
        }
        fields["env"] = {
            "JOB_NAME": fields["name"],
            "JOB_VERSION": fields["version"],
            "JOB_DEPLOYMENT_TIMESTAMP": str(fields["deployment_timestamp"]),
            **fields["env"],
        }
        return JobSpec(**fields)

    def wait_until(self, condition: Callable[[], object], what: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                result = condition()
                if result:
                    return result
            except (httpx.TransportError, docker.errors.NotFound):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.2)

    def live(self, url: str) -> Any:
        return self.http.get(url + "/live").json()

    def cleanup(self) -> None:
        for driver in self.drivers:
            driver.client.close()
        label = f"{LABEL_HOME}={home_digest(self.home)}"
        for container in self.client.containers.list(all=True, filters={"label": label}):
            container.remove(force=True)
        for image in self.client.images.list(filters={"label": LABEL_JOB}):
            if any(tag.startswith(REPOSITORY + "/") for tag in image.tags):
                with contextlib.suppress(docker.errors.APIError):
                    self.client.images.remove(image.id, force=True)
        self.http.close()
        self.database.dispose()


@pytest.fixture(scope="module")
def jobs(
    tmp_path_factory: pytest.TempPathFactory, base_image: str, docker_client: Any
) -> Iterator[Jobs]:
    helper = Jobs(tmp_path_factory.mktemp("docker"), base_image, docker_client)
    yield helper
    helper.cleanup()
