"""Racetrack's own image (``deploy/image/``), run as its three services.

Lifecycle, Pub and the Dashboard run as three containers of the image (built by the
``own_image`` fixture, see ``ownimage``) on the host's network, on free loopback ports, against
a fresh PostgreSQL database: the containers answer their probes, run as a non-root user, and a
user registers and logs in, the primer sample is deployed to the local target inside the
Lifecycle container and called through Pub. Two Lifecycle containers laid out as
``deploy/kubernetes/`` lays out Lifecycle's pods (a read-only root, a shared home owned by root
and the pod's group, ``config.yaml`` and ``secret.key`` mounted read-only into it) both start.
"""

from __future__ import annotations

import base64
import os
import re
import stat
import subprocess
import uuid
from pathlib import Path

import pytest

from racetrack_core.testing.server import RacetrackServer, free_port
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

    def start(self, service: str, extra: tuple[str, ...] = (), suffix: str = "") -> str:
        name = f"{self.prefix}-{service}{suffix}"
        args = ["run", "--detach", "--name", name, "--label", LABEL, "--network", "host"]
        args += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
        for key, value in self.env.items():
            args += ["--env", f"{key}={value}"]
        if CA_BUNDLE.is_file():
            # The local target's uv trusts the site's CAs (a proxy re-signing TLS) at run time;
            # the image itself holds none of them.
            args += ["--volume", f"{CA_BUNDLE}:/run/site-ca.pem:ro"]
            args += ["--env", "SSL_CERT_FILE=/run/site-ca.pem"]
        args += extra  # last: its variables win
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
        # The image's environment is read-only to its user: a plugin install is refused up
        # front, saying how plugins get into a containerized Racetrack.
        client = RacetrackServer(tmp_path / "unused", admin_password=admin_password)
        client.ports = dict(services.ports)
        client.login()
        refused = client.api(
            "POST", "/plugin/install", json={"source": "racetrack-hello-jobtype==0.1.0"}
        )
        assert refused.status_code == 400, refused.text
        assert "Python environment (/opt/racetrack) is read-only" in refused.text
        assert "derived image" in refused.text
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


def test_the_image_has_a_docker_cli_and_no_engine(own_image: str) -> None:
    """Lifecycle in a pod builds job images with the image's own docker CLI (a BuildKit
    client, Debian's) against the engine its build settings name; the image carries no engine.
    With no engine to reach, ``docker version`` still prints the client's version."""
    done = subprocess.run(
        [
            str(DOCKER), "run", "--rm", "--network", "none", "--label", LABEL,
            "--env", "DOCKER_HOST=unix:///nonexistent.sock", "--entrypoint", "sh", own_image,
            "-c", "command -v docker; docker version --format '{{.Client.Version}}'; "
            "command -v dockerd containerd runc || echo no-engine",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    lines = done.stdout.split()
    assert lines[0] == "/usr/bin/docker", done.stdout + done.stderr
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", lines[1]), done.stdout + done.stderr
    assert lines[2:] == ["no-engine"], done.stdout


def test_lifecycle_replicas_start_on_a_shared_volume_home_with_a_mounted_key(
    own_image: str, postgres_url: str, tmp_path: Path
) -> None:
    """Lifecycle's pods in ``deploy/kubernetes/``: the home is a volume whose root belongs to
    root and the pod's group (``fsGroup`` 10001, mode 2770), ``config.yaml`` and ``secret.key``
    are files mounted into it read-only (0440, the group's), the root file system is read-only.
    Two Lifecycles on that home both become ready, keeping the given key and the volume's mode
    (a Lifecycle that insisted on chmod-ing a home it does not own died at its start)."""
    home, files = tmp_path / "home", tmp_path / "files"
    home.mkdir()
    files.mkdir()
    os.chown(home, 0, 10001)
    home.chmod(0o2770)
    key = base64.urlsafe_b64encode(os.urandom(32)).decode() + "\n"
    (files / "secret.key").write_text(key)
    (files / "config.yaml").write_text("targets: {}\n")
    for name in ("secret.key", "config.yaml"):
        os.chown(files / name, 0, 10001)
        (files / name).chmod(0o440)
    mounts: tuple[str, ...] = (
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--volume",
        f"{home}:/var/lib/racetrack",
    )
    for name in ("secret.key", "config.yaml"):
        mounts += ("--volume", f"{files / name}:/var/lib/racetrack/{name}:ro")
    services = Containers(own_image, postgres_url, "an admin password for the pod layout")
    second = free_port()
    try:
        services.start("lifecycle", mounts)
        services.start("lifecycle", (*mounts, "--env", f"RACETRACK_LIFECYCLE_PORT={second}"), "-2")
        services.wait("lifecycle", "/ready")
        wait_until_ok(f"http://127.0.0.1:{second}/ready", lambda: services.died("lifecycle"))
        assert (files / "secret.key").read_text() == key
        assert stat.S_IMODE(home.stat().st_mode) == 0o2770
        assert (home / ".start.lock").is_file()
    finally:
        services.remove()
