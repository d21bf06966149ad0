"""``deploy/compose/``: Debian's ``docker-compose`` (1.29) reads it, and it runs.

``docker-compose config`` must accept the file as the docs tell operators to use it (the
example environment file, with and without the bundled PostgreSQL). Then the three services
run for real from Racetrack's own image (the ``own_image`` fixture) under a project name of
their own, on free loopback ports, against a fresh database of the machine's PostgreSQL (no
PostgreSQL image can be pulled here, so the bundled one is not started): a user registers and
logs in, a job is deployed and called through Pub. ``docker-compose down -v`` removes the
project's containers and volumes afterwards.

With the optional ``docker-target.yml`` on top, the same walk runs with the job on the Docker
target, built and run on a second Docker engine (``second_engine``) that Lifecycle reaches over
loopback TCP by ``RACETRACK_DOCKER_HOST`` alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from racetrack_core.testing.server import free_port
from tests.deploy.ownimage import (
    BASE_IMAGE,
    CA_BUNDLE,
    LABEL,
    PASSED_THROUGH,
    wait_until_ok,
    walk_through,
)
from tests.support.dockerd import SecondEngine

pytestmark = [pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "deploy" / "compose" / "docker-compose.yml"
EXAMPLE_ENV = REPO / "deploy" / "compose" / "racetrack.env.example"
DOCKER_TARGET_FILE = REPO / "deploy" / "compose" / "docker-target.yml"
JOB_REPOSITORY = "racetrack-test-compose"
SERVICES = ("lifecycle", "pub", "dashboard")


def _compose(
    *args: str, env: dict[str, str], files: tuple[Path, ...] = (COMPOSE_FILE,), timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("docker-compose is not installed (Debian: apt-get install docker-compose)")
    command = [compose, *(arg for f in files for arg in ("--file", str(f))), *args]
    return subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout
    )


def _config(
    *args: str, env: dict[str, str], files: tuple[Path, ...] = (COMPOSE_FILE,)
) -> dict[str, Any]:
    done = _compose(*args, "config", env=env, files=files)
    assert done.returncode == 0, done.stderr
    loaded: dict[str, Any] = YAML(typ="safe").load(done.stdout)
    return loaded


def test_docker_compose_reads_the_file_as_documented() -> None:
    env = {"RACETRACK_ENV_FILE": str(EXAMPLE_ENV), "RACETRACK_IMAGE": "racetrack/racetrack:test"}
    config = _config("--profile", "postgres", env=env)
    assert set(config["services"]) == {*SERVICES, "postgres"}
    for name in SERVICES:
        service = config["services"][name]
        assert service["image"] == "racetrack/racetrack:test"
        assert service["command"] == ["serve", name]
        assert service["network_mode"] == "host"
        assert service["user"] == "10001:10001"
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        environment = service["environment"]
        assert environment["RACETRACK_INTERNAL_LIFECYCLE_URL"] == "http://127.0.0.1:7102/lifecycle"
        assert environment["RACETRACK_DATABASE_URL"].startswith("postgresql://")
        assert environment["RACETRACK_INTERNAL_TOKEN"]
        probe = " ".join(service["healthcheck"]["test"])
        assert ("/live" if name == "dashboard" else "/ready") in probe
    moved = _config(env={**env, "RACETRACK_LIFECYCLE_PORT": "17102"})
    lifecycle = moved["services"]["lifecycle"]["environment"]
    assert lifecycle["RACETRACK_LIFECYCLE_PORT"] == "17102"
    assert lifecycle["RACETRACK_INTERNAL_LIFECYCLE_URL"] == "http://127.0.0.1:17102/lifecycle"


def test_docker_compose_refuses_a_missing_environment_file(tmp_path: Path) -> None:
    done = _compose("config", env={"RACETRACK_ENV_FILE": str(tmp_path / "absent.env")})
    assert done.returncode != 0
    assert "absent.env" in done.stderr


def test_the_docker_target_override_points_lifecycle_at_an_engine() -> None:
    env = {"RACETRACK_ENV_FILE": str(EXAMPLE_ENV), "RACETRACK_DOCKER_HOST": "tcp://127.0.0.1:2375"}
    config = _config(env=env, files=(COMPOSE_FILE, DOCKER_TARGET_FILE))
    lifecycle = config["services"]["lifecycle"]
    assert lifecycle["environment"]["RACETRACK_INFRASTRUCTURE_TARGET"] == "docker"
    assert lifecycle["environment"]["DOCKER_HOST"] == "tcp://127.0.0.1:2375"
    # The image's own docker CLI builds: nothing of the host's is lent.
    assert not any("/usr/bin/docker" in v for v in lifecycle["volumes"])
    assert any(v.startswith("racetrack-home:") for v in lifecycle["volumes"])
    for name in ("pub", "dashboard"):
        assert "DOCKER_HOST" not in config["services"][name]["environment"]
    env.pop("RACETRACK_DOCKER_HOST")
    done = _compose("config", env=env, files=(COMPOSE_FILE, DOCKER_TARGET_FILE))
    assert done.returncode != 0
    assert "set RACETRACK_DOCKER_HOST" in done.stderr


@pytest.mark.slow
def test_the_compose_project_runs(own_image: str, postgres_url: str, tmp_path: Path) -> None:
    _run_project(own_image, postgres_url, tmp_path)


@pytest.mark.slow
def test_the_compose_project_runs_jobs_on_an_engine_over_tcp(
    own_image: str, postgres_url: str, second_engine: SecondEngine, tmp_path: Path
) -> None:
    """With ``docker-target.yml``, the primer job is built and run by the Docker target on the
    second engine, which Lifecycle reaches over loopback TCP only."""
    second_engine.load(BASE_IMAGE)
    build: dict[str, Any] = {
        "repository": JOB_REPOSITORY,
        "base_images": {"python:3.11-slim": BASE_IMAGE},  # no registry to pull from here
        **({"ca_bundle": "/run/site-ca.pem"} if CA_BUNDLE.is_file() else {}),
    }
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"targets": {"docker": {"drain_seconds": 0, "build": build}}}))
    config.chmod(0o644)
    try:
        _run_project(
            own_image,
            postgres_url,
            tmp_path,
            files=(DOCKER_TARGET_FILE,),
            lifecycle={"volumes": [f"{config}:/var/lib/racetrack/config.yaml:ro"]},
            env={"RACETRACK_DOCKER_HOST": second_engine.host},
        )
        jobs = second_engine.cli("ps", "--filter", "label=racetrack.job=primer", "--quiet")
        assert jobs, "the primer job does not run on the engine that RACETRACK_DOCKER_HOST names"
    finally:
        second_engine.remove_containers()
        second_engine.remove_images(JOB_REPOSITORY)


def _run_project(
    own_image: str,
    postgres_url: str,
    tmp_path: Path,
    files: tuple[Path, ...] = (),
    lifecycle: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> None:
    """Run the project (``docker-compose.yml``, then ``files``) and walk through it."""
    admin_password = "an admin password for the compose test"
    ports = {name: free_port() for name in SERVICES}
    env_file = tmp_path / "racetrack.env"
    env_file.write_text(
        f"RACETRACK_ADMIN_PASSWORD={admin_password}\n"
        f"RACETRACK_INTERNAL_TOKEN={uuid.uuid4().hex}{uuid.uuid4().hex}\n"
        f"RACETRACK_DATABASE_URL={postgres_url}\n"
        "RACETRACK_JOB_WATCH_INTERVAL=0.5\n"
        + "".join(f"{name}={os.environ[name]}\n" for name in PASSED_THROUGH if name in os.environ)
    )
    # The test's own additions: labels to find its containers, and the site's CAs for the
    # local target's uv (a proxy re-signing TLS), mounted at run time only.
    key, value = LABEL.split("=")
    extra: dict[str, Any] = {"labels": {key: value}}
    if CA_BUNDLE.is_file():
        extra["volumes"] = [f"{CA_BUNDLE}:/run/site-ca.pem:ro"]
        extra["environment"] = {"SSL_CERT_FILE": "/run/site-ca.pem"}
    services = {name: dict(extra) for name in SERVICES}
    for name, values in (lifecycle or {}).items():
        services["lifecycle"][name] = [*services["lifecycle"].get(name, []), *values]
    override = tmp_path / "docker-compose.test.yml"
    YAML().dump({"version": "3.9", "services": services}, override)
    env = {
        **(env or {}),
        "RACETRACK_IMAGE": own_image,
        "RACETRACK_ENV_FILE": str(env_file),
        **{f"RACETRACK_{name.upper()}_PORT": str(port) for name, port in ports.items()},
    }
    project = ("--project-name", f"racetrack-ownimage-{uuid.uuid4().hex[:8]}")
    files = (COMPOSE_FILE, *files, override)

    def logs() -> str:
        done = _compose(*project, "logs", "--no-color", "--tail", "60", env=env, files=files)
        return done.stdout + done.stderr

    try:
        started = _compose(*project, "up", "--detach", *SERVICES, env=env, files=files)
        assert started.returncode == 0, started.stderr
        for name, path in (("lifecycle", "/ready"), ("pub", "/ready"), ("dashboard", "/live")):
            wait_until_ok(f"http://127.0.0.1:{ports[name]}{path}", lambda: None)
        walk_through(ports, admin_password, logs, tmp_path)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{logs()}") from None
    finally:
        _compose(*project, "down", "--volumes", "--timeout", "5", env=env, files=files)
