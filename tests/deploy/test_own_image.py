"""Racetrack's own image (``deploy/image/``), run as its three services.

Lifecycle, Pub and the Dashboard run as three containers of the image (built by the
``own_image`` fixture, see ``ownimage``) on the host's network, on free loopback ports, against
a fresh PostgreSQL database: the containers answer their probes, run as a non-root user, and a
user registers and logs in, the primer sample is deployed to the local target inside the
Lifecycle container and called through Pub.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from racetrack_core.testing.server import free_port
from tests.deploy.ownimage import (
    CA_BUNDLE,
    DOCKER,
    LABEL,
    PASSED_THROUGH,
    docker_cli,
    wait_until_ok,
    walk_through,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


class Containers:
    """The three services, each a container of the image on the host's network."""

    def __init__(self, image: str, database_url: str, admin_password: str) -> None:
        self.image = image
        self.prefix = f"racetrack-ownimage-{uuid.uuid4().hex[:8]}"
        self.ports = {name: free_port() for name in ("lifecycle", "pub", "dashboard")}
        self.env = {
            "RACETRACK_DATABASE_URL": database_url,
            "RACETRACK_HOST": "127.0.0.1",
            "RACETRACK_LIFECYCLE_PORT": str(self.ports["lifecycle"]),
            "RACETRACK_PUB_PORT": str(self.ports["pub"]),
            "RACETRACK_DASHBOARD_PORT": str(self.ports["dashboard"]),
            "RACETRACK_INTERNAL_TOKEN": uuid.uuid4().hex + uuid.uuid4().hex,
            "RACETRACK_ADMIN_PASSWORD": admin_password,
            "RACETRACK_JOB_WATCH_INTERVAL": "0.5",
            "RACETRACK_PUB_AUTH_CACHE_TTL": "1",
            **{name: os.environ[name] for name in PASSED_THROUGH if name in os.environ},
        }
        self.names: list[str] = []

    def start(self, service: str) -> str:
        name = f"{self.prefix}-{service}"
        args = ["run", "--detach", "--name", name, "--label", LABEL, "--network", "host"]
        args += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
        for key, value in self.env.items():
            args += ["--env", f"{key}={value}"]
        if CA_BUNDLE.is_file():
            # The local target's uv trusts the site's CAs (a proxy re-signing TLS) at run time;
            # the image itself holds none of them.
            args += ["--volume", f"{CA_BUNDLE}:/run/site-ca.pem:ro"]
            args += ["--env", "SSL_CERT_FILE=/run/site-ca.pem"]
        docker_cli(*args, self.image, "serve", service)
        self.names.append(name)
        return name

    def wait(self, service: str, path: str) -> None:
        wait_until_ok(f"http://127.0.0.1:{self.ports[service]}{path}", lambda: self.died(service))

    def died(self, service: str) -> str | None:
        state = docker_cli("inspect", "--format", "{{.State.Status}}", f"{self.prefix}-{service}")
        return None if state == "running" else f"{service} is {state}:\n{self.logs()}"

    def logs(self) -> str:
        parts = []
        for name in self.names:
            done = subprocess.run(
                [str(DOCKER), "logs", "--tail", "60", name], capture_output=True, text=True
            )
            parts.append(f"--- {name}\n{done.stdout}{done.stderr}")
        return "\n".join(parts)

    def remove(self) -> None:
        for name in self.names:
            docker_cli("rm", "--force", name, check=False)


def test_the_image_runs_lifecycle_pub_and_dashboard(
    own_image: str, postgres_url: str, tmp_path: Path
) -> None:
    admin_password = "an admin password for the image test"
    services = Containers(own_image, postgres_url, admin_password)
    try:
        for service in ("lifecycle", "pub", "dashboard"):
            services.start(service)
        services.wait("lifecycle", "/ready")
        services.wait("pub", "/ready")
        services.wait("dashboard", "/live")
        lifecycle = f"{services.prefix}-lifecycle"
        assert docker_cli("exec", lifecycle, "id", "-u") == "10001", "the image runs as root"
        walk_through(services.ports, admin_password, services.logs, tmp_path)
    finally:
        services.remove()


def test_the_image_keeps_no_build_secret(own_image: str) -> None:
    """The CA bundle and the package index were build secrets: no layer, history entry or
    setting of the image holds them, nor the apt setting that pointed at the CA bundle."""
    history = docker_cli("history", "--no-trunc", "--format", "{{.CreatedBy}}", own_image)
    config = docker_cli("image", "inspect", "--format", "{{json .Config}}", own_image)
    assert "$(cat /run/secrets/package_index)" in history
    index = os.environ.get("PIP_INDEX_URL")
    for text in (history, config):
        assert "BEGIN CERTIFICATE" not in text
        assert not index or index not in text
    left = docker_cli(
        "run", "--rm", "--network", "none", "--label", LABEL, "--entrypoint", "sh", own_image,
        "-c", "ls /etc/apt/apt.conf.d /run/secrets 2>&1; ls /tmp",
    )  # fmt: skip
    assert "99racetrack-ca" not in left
    assert "ca_bundle" not in left
    assert "package_index" not in left
    assert "constraints.txt" not in left
