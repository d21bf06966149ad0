"""The sample plugin as a user meets it: two releases of ``racetrack-hello-jobtype`` on a package
index, installed on a running server with ``racetrack plugin install``, its example job deployed
on the ``local`` and ``docker`` targets and called through Pub, an upgrade that keeps the older
job type version's jobs answering, and an uninstall refused while jobs use it.

The wheels are built from copies of ``sample/plugins/racetrack-hello-jobtype`` (only the release
number and the job type versions changed, as an author changes them) and served as a PEP 503
simple index on 127.0.0.1. The server runs in an environment of its own (``server_venv``), and
the CLI in the tests' environment, where the plugin is not installed: the server validates.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from racetrack_core.images import LABEL_JOB
from racetrack_core.testing.server import QUICK_ENV, RacetrackServer
from racetrack_plugins.docker_infra.containers import LABEL_HOME, home_digest
from tests.e2e.plugin_index import build_wheel, simple_index
from tests.samples.hello import EXAMPLE, hello_base_image, hello_release

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REPOSITORY = "racetrack-test-hello"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The simple index's URL: release 0.1.0 registers hello:1.0.0, 0.2.0 adds hello:1.1.0."""
    root = tmp_path_factory.mktemp("hello-index")
    for version, job_types in [("0.1.0", ("1.0.0",)), ("0.2.0", ("1.0.0", "1.1.0"))]:
        build_wheel(hello_release(root, version, job_types), root / "wheels")
    with simple_index(root / "wheels") as url:
        yield url


@pytest.fixture
def docker_client() -> Iterator[Any]:
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except docker.errors.DockerException as error:
        pytest.skip(f"no Docker engine: {error}")
    yield client
    client.close()


@pytest.fixture
def server(
    tmp_path: Path, server_venv: Path, index: str, docker_client: Any
) -> Iterator[RacetrackServer]:
    """``racetrack up`` with the ``local`` target (the default) and the ``docker`` one."""
    hello_base_image(tmp_path / "bootstrap-home")
    home = tmp_path / "home"
    home.mkdir()
    docker_settings = {
        "drain_seconds": 0,
        "stop_grace_seconds": 2,
        "build": {"repository": REPOSITORY},
    }
    config = {"targets": {"docker": docker_settings}}
    (home / "config.yaml").write_text(json.dumps(config), encoding="utf-8")
    env = {
        **QUICK_ENV,
        "RACETRACK_PLUGIN_INDEX_URL": index,
        "RACETRACK_SOURCE_ALLOWED_HOSTS": "127.0.0.1",
    }
    running = RacetrackServer(home, env=env, python=str(server_venv / "bin" / "python"))
    try:
        with running:
            yield running
    finally:
        label = f"{LABEL_HOME}={home_digest(home / 'targets' / 'docker')}"
        for container in docker_client.containers.list(all=True, filters={"label": label}):
            container.remove(force=True)
        for image in docker_client.images.list(filters={"label": LABEL_JOB}):
            if any(tag.startswith(REPOSITORY + "/") for tag in image.tags):
                with contextlib.suppress(docker.errors.APIError):
                    docker_client.images.remove(image.id, force=True)


def test_install_deploy_on_both_targets_upgrade_and_refuse_uninstall(
    server: RacetrackServer, tmp_path: Path
) -> None:
    def racetrack(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "RACETRACK_CONFIG_DIR": str(tmp_path / "config")}
        return subprocess.run(
            [sys.executable, "-m", "racetrack_cli", *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    def succeeds(*args: str, stdin: str = "") -> str:
        done = racetrack(*args, stdin=stdin)
        assert done.returncode == 0, f"racetrack {' '.join(args)}:\n{done.stderr}\n{server.log()}"
        return done.stdout

    def answer(version: str) -> Any:
        called = server.call("hello-world", version, {}, path="/api/v1/perform")
        assert called.status_code == 200, called.text
        return called.json()

    succeeds("set", "remote", server.remote)
    succeeds("login", "--username", "admin", stdin=f"{server.admin_password}\n")
    server.login()

    # Install the first release by requirement, from the server's package index.
    installed = succeeds("plugin", "install", "racetrack-hello-jobtype==0.1.0")
    assert installed == "plugin hello 0.1.0: job types hello:1.0.0\n"
    listed = {info["name"]: info for info in json.loads(succeeds("plugin", "list", "--json"))}
    assert (listed["hello"]["version"], listed["hello"]["job_types"]) == ("0.1.0", ["hello:1.0.0"])
    table = succeeds("plugin", "list").splitlines()
    assert [line.split()[:4] for line in table if line.startswith("hello ")] == [
        ["hello", "0.1.0", "no", "hello:1.0.0"]
    ]

    # The example job on the local target (the server's default), then on Docker.
    succeeds("deploy", str(EXAMPLE))
    succeeds("deploy", str(EXAMPLE), "-e", "version=1.0.1", "-e", "infrastructure_target=docker")
    targets = {
        version: server.api("GET", f"/job/hello-world/{version}").json()["infrastructure_target"]
        for version in ("1.0.0", "1.0.1")
    }
    assert targets == {"1.0.0": "local", "1.0.1": "docker"}
    greeting = {"greeting": "Hello, world", "job_type": "hello:1.0.0"}
    assert answer("1.0.0") == greeting
    assert answer("1.0.1") == greeting
    called = succeeds("call", "hello-world", "/api/v1/perform", "{}", "--version", "1.0.1")
    assert json.loads(called) == greeting
    unauthenticated = server.call("hello-world", "1.0.1", {}, token=None)
    assert unauthenticated.status_code == 401

    # Upgrade: 0.2.0 keeps hello:1.0.0 and adds hello:1.1.0; jobs of both versions answer.
    upgraded = succeeds("plugin", "install", "racetrack-hello-jobtype==0.2.0")
    assert upgraded == "plugin hello 0.2.0: job types hello:1.0.0, hello:1.1.0\n"
    succeeds(
        "deploy", str(EXAMPLE), "-e", "version=2.0.0", "-e", "jobtype=hello:1.1.0",
        "-e", "jobtype_extra.greeting=Hello again",
    )  # fmt: skip
    assert answer("2.0.0") == {"greeting": "Hello again", "job_type": "hello:1.1.0"}
    assert answer("1.0.0") == greeting
    assert answer("1.0.1") == greeting

    # Uninstalling is refused while jobs use it, naming them; --force names what stops working.
    uses = [
        "hello-world 1.0.0 (hello:1.0.0)",
        "hello-world 1.0.1 (hello:1.0.0)",
        "hello-world 2.0.0 (hello:1.1.0)",
    ]
    refused = racetrack("plugin", "uninstall", "hello")
    assert refused.returncode == 1
    assert all(job in refused.stderr for job in uses), refused.stderr
    assert "--force" in refused.stderr
    assert answer("1.0.1") == greeting
    forced = racetrack("plugin", "uninstall", "hello", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "stop working: " in forced.stderr
    assert all(job in forced.stderr for job in uses), forced.stderr
    versions = server.api("GET", "/plugin/job_type/versions").json()
    assert [version for version in versions if version.startswith("hello:")] == []
