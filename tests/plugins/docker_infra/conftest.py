"""Fixtures for the Docker target's tests: a real engine, a base image without a registry.

The builds start FROM the python3 job type's declared base image
(``racetrack/python3-base:bookworm``), the one ``racetrack images bootstrap`` makes. Under CI it
is there (``.ci/run`` runs the command first); elsewhere the fixture builds it through the
command's own functions and settings (``base_images_cache``, by default the machine's shared
cache), which needs root and debootstrap unless the cache holds the root already. Tests skip
without an engine or a way to get the image (with ``CI=true`` a skip fails the run). Every
container and image a test makes carries labels (the driver's home digest, the
``racetrack-test-job`` repository) and is removed by those labels afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx
import pytest

from racetrack_core.baseimages import BaseImageError, BaseImageRegistry
from racetrack_core.baseimages.bootstrap import State, options_from_settings, plan, run
from racetrack_core.baseimages.engine import DockerEngine
from racetrack_core.images import LABEL_JOB
from racetrack_core.infrastructure import JobSpec, TargetContext
from racetrack_core.lifecycle.ports import DatabasePorts
from racetrack_core.registry import JobType
from racetrack_core.settings import Settings
from racetrack_core.storage.database import connect, migrate
from racetrack_plugins.docker_infra import DockerDriver
from racetrack_plugins.docker_infra.containers import LABEL_HOME, home_digest
from racetrack_plugins.python3 import RECIPES
from racetrack_plugins.python3.base_images import BASE_IMAGE, register_base_images

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
def base_image(docker_client: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The python3 base image the builds start FROM, as ``racetrack images bootstrap`` makes it.

    Planned with the command's settings (the environment's ``RACETRACK_BASE_IMAGES_*``); built
    and imported by its ``run`` when the engine lacks it or holds an outdated one.
    """
    registry = BaseImageRegistry()
    register_base_images(registry.registrar("python3"))
    specs = registry.select([BASE_IMAGE])
    home = tmp_path_factory.mktemp("base-image-home")
    options = options_from_settings(Settings.load({"home": str(home)}))
    docker_cli = shutil.which(options.docker_cli) or options.docker_cli
    options = replace(options, docker_cli=docker_cli)
    try:
        [planned] = plan(specs, options, DockerEngine(docker_cli))
    except BaseImageError as error:
        _skip_or_fail(f"cannot plan {BASE_IMAGE}: {error}")
    if planned.state is State.PRESENT:
        return BASE_IMAGE
    if os.geteuid() != 0:
        _skip_or_fail(f"{BASE_IMAGE} is {planned.state}; building it needs root")
    if planned.state is not State.CACHED and shutil.which(options.debootstrap) is None:
        _skip_or_fail(f"{BASE_IMAGE} is {planned.state}; building it needs debootstrap")
    run(specs, options, lambda line: print(line, file=sys.stderr))
    return BASE_IMAGE


def settings_for(base_image: str, **changes: Any) -> dict[str, Any]:
    """Driver settings that build FROM ``base_image`` and stop quickly."""
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
