"""Racetrack's own image as replicas, with jobs on the Docker target (issue 14's "Done when").

Two Lifecycle, two Pub and one Dashboard container of the image (the ``own_image`` fixture)
run on the host's network, on free loopback ports, against one fresh PostgreSQL database. The
Lifecycles share a home folder (``secret.key``, ``config.yaml``) and deploy to the Docker
target on a second Docker engine that listens on loopback TCP only (``second_engine``), named
to them by the target's settings in ``config.yaml`` (``base_url`` for the SDK, ``build.engine``
for the image's own docker CLI that builds), with no engine socket and no host binary mounted.
(``test_compose.py`` names the engine by ``DOCKER_HOST`` instead.) Job containers use the
host's network and listen on 127.0.0.1, where both Pubs reach them.

The checks are those of ``tests/e2e/test_replicas.py`` (``tests/support/replicas.py``): twenty
deployments at once through both Lifecycles each finish once, by the Lifecycle that received
it, as twenty distinct running job containers; the login rate limit holds across both; one
Lifecycle container killed (``docker kill``) in the middle of deployments leaves none in
progress after about ``lease_ttl`` while calls through both Pubs succeed.

The image's containers carry the label ``racetrack-test=ownimage`` and are removed by name;
job images on the second engine are tagged under ``racetrack-test-ownreplicas`` and removed by
that name, the engine's build cache kept for the next run.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from racetrack_core.testing.server import free_port
from tests.deploy.ownimage import (
    BASE_IMAGE,
    CA_BUNDLE,
    DOCKER,
    LABEL,
    PASSED_THROUGH,
    docker_cli,
    wait_until_ok,
)
from tests.support.dockerd import SecondEngine
from tests.support.replicas import (
    call,
    check_login_limit,
    deploy_first,
    deploy_twenty_at_once,
    kill_during_deployments,
    login,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PASSWORD = "the admin's pass phrase for the image's replicas"
LEASE_TTL = 3.0
JOB_REPOSITORY = "racetrack-test-ownreplicas"
#: The image's user, who owns the Lifecycles' shared home folder.
UID = 10001


class ImageReplicas:
    """lc1, lc2, pub1, pub2 and a dashboard: containers of the image on the host's network."""

    def __init__(self, image: str, database_url: str, home: Path, engine: SecondEngine) -> None:
        self.image = image
        self.database_url = database_url
        self.home = home
        self.engine = engine
        self.prefix = f"racetrack-ownreplicas-{uuid.uuid4().hex[:8]}"
        names = ("lc1", "lc2", "pub1", "pub2", "dashboard")
        self.ports = {name: free_port() for name in names}
        self.names: list[str] = []
        self.internal_token = uuid.uuid4().hex + uuid.uuid4().hex

    def url(self, name: str) -> str:
        base = f"http://127.0.0.1:{self.ports[name]}"
        return f"{base}/lifecycle" if name.startswith("lc") else f"{base}/pub"

    def write_home(self) -> None:
        """The Lifecycles' home: config.yaml for the Docker target, owned by the image's user."""
        build = {
            "engine": self.engine.host,
            "repository": JOB_REPOSITORY,
            "base_images": {"python:3.11-slim": BASE_IMAGE},
            **({"ca_bundle": "/run/site-ca.pem"} if CA_BUNDLE.is_file() else {}),
        }
        docker = {"base_url": self.engine.host, "drain_seconds": 0, "stop_grace_seconds": 2}
        docker["build"] = build
        self.home.mkdir(mode=0o700)
        (self.home / "config.yaml").write_text(json.dumps({"targets": {"docker": docker}}))
        for path in (self.home, self.home / "config.yaml"):
            os.chown(path, UID, UID)

    def launch(self, name: str) -> None:
        service = "dashboard" if name == "dashboard" else "lifecycle" if name[0] == "l" else "pub"
        lifecycle = self.url("lc1" if name in {"lc1", "pub1"} else "lc2")
        env = {
            "RACETRACK_DATABASE_URL": self.database_url,
            "RACETRACK_HOST": "127.0.0.1",
            f"RACETRACK_{service.upper()}_PORT": str(self.ports[name]),
            "RACETRACK_INTERNAL_TOKEN": self.internal_token,
            "RACETRACK_ADMIN_PASSWORD": PASSWORD,
            "RACETRACK_LEASE_TTL": str(LEASE_TTL),
            "RACETRACK_JOB_WATCH_INTERVAL": "0.5",
            "RACETRACK_PUB_AUTH_CACHE_TTL": "1",
            # While its Lifecycle is down, a Pub answers from the permissions it last saw.
            "RACETRACK_PUB_AUTH_STALE_TTL": "600",
            "RACETRACK_INTERNAL_LIFECYCLE_URL": lifecycle,
            "RACETRACK_EXTERNAL_PUB_URL": self.url("pub1"),
            "RACETRACK_INTERNAL_PUB_URL": self.url("pub1"),
            "RACETRACK_INFRASTRUCTURE_TARGET": "docker",
            "RACETRACK_DEPLOY_WORKERS": "4",
            **{key: os.environ[key] for key in PASSED_THROUGH if key in os.environ},
        }
        args = ["run", "--detach", "--name", f"{self.prefix}-{name}", "--label", LABEL]
        args += ["--network", "host", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
        if service == "lifecycle":
            # The image's own docker CLI builds on the second engine; no engine socket and no
            # host binary is mounted.
            args += ["--volume", f"{self.home}:/var/lib/racetrack"]
            if CA_BUNDLE.is_file():
                args += ["--volume", f"{CA_BUNDLE}:/run/site-ca.pem:ro"]
        for key, value in env.items():
            args += ["--env", f"{key}={value}"]
        docker_cli(*args, self.image, "serve", service)
        self.names.append(f"{self.prefix}-{name}")

    def wait(self, name: str) -> None:
        path = "/live" if name == "dashboard" else "/ready"
        url = f"http://127.0.0.1:{self.ports[name]}{path}"
        wait_until_ok(url, lambda: self.died(name))

    def died(self, name: str) -> str | None:
        state = docker_cli("inspect", "--format", "{{.State.Status}}", f"{self.prefix}-{name}")
        return None if state == "running" else f"{name} is {state}:\n{self.log(name)}"

    def kill(self, name: str) -> None:
        docker_cli("kill", f"{self.prefix}-{name}")

    def log(self, name: str) -> str:
        done = subprocess.run(
            [str(DOCKER), "logs", "--tail", "60", f"{self.prefix}-{name}"],
            capture_output=True,
            text=True,
            check=False,
        )
        return f"--- {name}\n{done.stdout}{done.stderr}"

    def remove(self) -> None:
        for name in self.names:
            docker_cli("rm", "--force", name, check=False)


@pytest.fixture
def image_replicas(
    own_image: str, postgres_url: str, second_engine: SecondEngine, tmp_path: Path
) -> Iterator[ImageReplicas]:
    second_engine.load(BASE_IMAGE)
    racetrack = ImageReplicas(own_image, postgres_url, tmp_path / "home", second_engine)
    racetrack.write_home()
    try:
        # Both Lifecycles start at once on an empty database and home folder.
        for group in (("lc1", "lc2"), ("pub1", "pub2", "dashboard")):
            for name in group:
                racetrack.launch(name)
            for name in group:
                racetrack.wait(name)
        yield racetrack
    finally:
        racetrack.remove()
        second_engine.remove_containers()
        second_engine.remove_images(JOB_REPOSITORY)


def test_the_image_runs_as_replicas_with_jobs_on_the_docker_target(
    image_replicas: ImageReplicas, second_engine: SecondEngine
) -> None:
    replicas = image_replicas
    token = login(replicas.url("lc1"), "admin", PASSWORD)
    deploy_first(replicas, token, "warm", timeout=240)
    names = deploy_twenty_at_once(replicas, token, timeout=180)

    # Twenty distinct job containers run on the engine the Lifecycles reach over TCP.
    running = second_engine.cli(
        "ps", "--filter", "label=racetrack.job", "--format", '{{.Label "racetrack.job"}}'
    ).split()
    assert sorted(n for n in running if n.startswith("rep-")) == names
    for pub in ("pub1", "pub2"):
        answer = call(replicas.url(pub), token, names[-1])
        assert answer.status_code == 200, answer.text

    check_login_limit(replicas)
    ended = kill_during_deployments(
        replicas, token, serving="warm", lease_ttl=LEASE_TTL, started=1.0
    )
    assert any(r["status"] == "failed" for r in ended), "lc1 finished every deployment first"
    dashboard = f"http://127.0.0.1:{replicas.ports['dashboard']}/dashboard/live"
    wait_until_ok(dashboard, lambda: replicas.died("dashboard"), timeout=10)
