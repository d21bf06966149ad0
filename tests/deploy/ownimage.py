"""What the deployment tests share: Racetrack's own image, built once per set of inputs, a
fresh PostgreSQL database, and the walk through a running installation.

The image is built by ``deploy/image/build.sh`` FROM the base image that ``racetrack images
bootstrap`` makes, and kept in the engine under a tag made of a hash of everything that goes
into it (the sources, the pinned versions, the Dockerfile, the base image's id), so a later run
with the same inputs reuses it. Every image and container these tests make carries the label
``racetrack-test=ownimage`` and is removed by name or by that label only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from racetrack_core.testing.server import RacetrackServer

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


def docker_cli(*args: str, check: bool = True, timeout: float = 120) -> str:
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
    if not DOCKER.is_file() or docker_cli("info", "--format", "{{.ID}}", check=False) == "":
        pytest.skip(f"no Docker engine or no BuildKit docker CLI at {DOCKER}")
    base_id = docker_cli("image", "inspect", "--format", "{{.Id}}", BASE_IMAGE, check=False)
    if not base_id:
        pytest.skip(f"{BASE_IMAGE} is missing: run `racetrack images bootstrap` first")
    tag = f"{REPOSITORY}:{inputs_digest(base_id)}"
    if docker_cli("image", "inspect", "--format", "{{.Id}}", tag, check=False):
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
    listed = docker_cli(
        "images", "--filter", f"label={LABEL}", "--format", "{{.Repository}}:{{.Tag}}"
    )
    for other in listed.split():
        if other.startswith(f"{REPOSITORY}:") and other != tag:
            docker_cli("rmi", other, check=False)
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


def wait_until_ok(url: str, alive: Callable[[], str | None], timeout: float = 90) -> None:
    """Wait until ``url`` answers 200; ``alive`` returns why the service died, if it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        died = alive()
        assert died is None, died
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer 200 within {timeout} s")


def walk_through(
    ports: dict[str, int], admin_password: str, logs: Callable[[], str], workdir: Path
) -> None:
    """Register and log in, deploy the primer sample, call it through Pub, open the Dashboard."""
    client = RacetrackServer(workdir / "unused", admin_password=admin_password)
    client.ports = dict(ports)
    client.login()
    someone, password = "someone@example.com", "a password of someone's " * 2
    registered = client.api(
        "POST", "/users/register", token=None, json={"username": someone, "password": password}
    )
    assert registered.status_code == 200, registered.text
    assert client.api("POST", f"/users/{someone}/activate").status_code == 200
    assert client.with_token("").login(someone, password)

    job = workdir / "primer"
    shutil.copytree(REPO / "sample" / "python-primer", job)
    record = client.deploy_folder(job, timeout=300)
    assert record["status"] == "done", f"{record}\n{logs()}"
    answer = client.call("primer", "latest", {"number": 7907})
    assert answer.status_code == 200, f"{answer.text}\n{logs()}"
    assert answer.json() is True

    dashboard = f"http://127.0.0.1:{ports['dashboard']}/dashboard"
    page = httpx.get(dashboard, timeout=10, follow_redirects=True)
    assert page.status_code == 200, page.text
