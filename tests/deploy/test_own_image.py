"""Racetrack's own image (``deploy/image/``), built here and run as its three services.

The image is built by ``deploy/image/build.sh`` FROM the base image that ``racetrack images
bootstrap`` makes, and kept in the engine under a tag made of a hash of everything that goes
into it (the sources, the pinned versions, the Dockerfile, the base image's id), so a later run
with the same inputs reuses it. Lifecycle, Pub and the Dashboard then run as three containers
of it on the host's network, on free loopback ports, against a fresh PostgreSQL database; a
user registers and logs in, the primer sample is deployed to the local target inside the
Lifecycle container, and called through Pub. Containers and images carry the label
``racetrack-test=ownimage`` and are removed by name or by that label only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from racetrack_core.testing.server import RacetrackServer, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
DOCKER = Path("/usr/bin/docker")
BASE_IMAGE = "racetrack/python3-base:bookworm"
REPOSITORY = "racetrack-test/racetrack"
LABEL = "racetrack-test=ownimage"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
POSTGRES_URL = os.environ.get("RACETRACK_TEST_POSTGRES_URL", "")
#: What goes into the image: hashed to name it.
INPUTS = ("racetrack_core", "racetrack_plugins", "cli", "schema", "deploy/image")
INPUT_FILES = ("pyproject.toml", "constraints.txt", "README.md")
PASSED_THROUGH = ("PIP_INDEX_URL", "UV_INDEX_URL", "UV_DEFAULT_INDEX")


def _docker(*args: str, check: bool = True, timeout: float = 120) -> str:
    done = subprocess.run(
        [str(DOCKER), *args], capture_output=True, text=True, check=False, timeout=timeout
    )
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:2])} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def inputs_digest(base_image_id: str) -> str:
    """A hash of the files the image is built from and of the base image's id."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", *INPUTS],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    digest = hashlib.sha256(base_image_id.encode())
    for name in sorted({n.decode() for n in listed if n} | set(INPUT_FILES)):
        path = REPO / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@pytest.fixture(scope="module")
def own_image() -> str:
    """The tag of Racetrack's image built from this checkout (reused when the inputs match)."""
    if not DOCKER.is_file() or _docker("info", "--format", "{{.ID}}", check=False) == "":
        pytest.skip(f"no Docker engine or no BuildKit docker CLI at {DOCKER}")
    base_id = _docker("image", "inspect", "--format", "{{.Id}}", BASE_IMAGE, check=False)
    if not base_id:
        pytest.skip(f"{BASE_IMAGE} is missing: run `racetrack images bootstrap` first")
    tag = f"{REPOSITORY}:{inputs_digest(base_id)}"
    if _docker("image", "inspect", "--format", "{{.Id}}", tag, check=False):
        return tag
    env = {
        **os.environ,
        "DOCKER": str(DOCKER),
        "PYTHON": sys.executable,
        "RACETRACK_IMAGE_BASE": BASE_IMAGE,
        "RACETRACK_IMAGE_LABELS": LABEL,
    }
    if CA_BUNDLE.is_file():
        env["RACETRACK_IMAGE_CA_BUNDLE"] = str(CA_BUNDLE)
    done = subprocess.run(
        [str(REPO / "deploy/image/build.sh"), tag],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert done.returncode == 0, f"build.sh failed:\n{done.stderr[-4000:]}"
    assert done.stdout.strip().splitlines()[-1] == tag
    # Older builds of this test's image are left behind by changed inputs: remove them.
    listed = _docker("images", "--filter", f"label={LABEL}", "--format", "{{.Repository}}:{{.Tag}}")
    for other in listed.split():
        if other.startswith(f"{REPOSITORY}:") and other != tag:
            _docker("rmi", other, check=False)
    return tag


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    if not POSTGRES_URL:
        pytest.skip("RACETRACK_TEST_POSTGRES_URL is not set (PostgreSQL is not available)")
    name = f"rt_ownimage_{uuid.uuid4().hex[:12]}"
    admin = make_url(POSTGRES_URL).set(drivername="postgresql")
    dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
        _docker(*args, self.image, "serve", service)
        self.names.append(name)
        return name

    def wait(self, service: str, path: str, timeout: float = 90) -> None:
        url = f"http://127.0.0.1:{self.ports[service]}{path}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            state = _docker("inspect", "--format", "{{.State.Status}}", f"{self.prefix}-{service}")
            assert state == "running", f"{service} exited:\n{self.logs()}"
            time.sleep(0.5)
        raise AssertionError(f"{url} did not answer 200 within {timeout} s:\n{self.logs()}")

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
            _docker("rm", "--force", name, check=False)


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
        assert _docker("exec", lifecycle, "id", "-u") == "10001", "the image runs as root"

        client = RacetrackServer(tmp_path / "unused", admin_password=admin_password)
        client.ports = dict(services.ports)
        client.login()
        someone = "someone@example.com"
        registered = client.api(
            "POST", "/users/register", token=None, json={"username": someone, "password": "x" * 20}
        )
        assert registered.status_code == 200, registered.text
        assert client.api("POST", f"/users/{someone}/activate").status_code == 200
        assert client.with_token("").login(someone, "x" * 20)

        job = tmp_path / "primer"
        shutil.copytree(REPO / "sample" / "python-primer", job)
        record = client.deploy_folder(job, timeout=300)
        assert record["status"] == "done", f"{record}\n{services.logs()}"
        answer = client.call("primer", "latest", {"number": 7907})
        assert answer.status_code == 200, f"{answer.text}\n{services.logs()}"
        assert answer.json() is True

        page = httpx.get(f"http://127.0.0.1:{services.ports['dashboard']}/dashboard", timeout=10)
        assert page.status_code in {200, 303, 307}, page.text
    finally:
        services.remove()
