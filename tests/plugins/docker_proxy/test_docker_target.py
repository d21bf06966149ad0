"""The docker-proxy sample on the Docker target behind a real ``racetrack up``: deployed from
the CLI, called through Pub, its runtime contract, two versions side by side on port 7004, a
redeploy under load, and a Dockerfile that fails while the previous version keeps serving.

No registry is needed: the sample starts ``FROM`` the base image ``racetrack images
bootstrap`` makes; the proxy's builder stage (``golang:1.19-bookworm``) is mapped to an image
of the host's Go; a copy with an original-style ``FROM python:3.11-slim`` is mapped to the
base image through the same ``build.base_images`` setting.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from racetrack_core.testing.server import QUICK_ENV, RacetrackServer
from racetrack_plugins.docker_infra.containers import LABEL_HOME, home_digest
from racetrack_plugins.docker_proxy.image import DEFAULT_BUILDER_IMAGE
from tests.plugins.docker_infra.conftest import (
    DOCKER_CLI,
    REPOSITORY,
    base_image,
    docker_client,
    settings_for,
)
from tests.plugins.golang.conftest import go, go_build_cache
from tests.plugins.golang.test_image import builder_image

__all__ = ["base_image", "builder_image", "docker_client", "go", "go_build_cache"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
SAMPLE = Path(__file__).resolve().parents[3] / "sample" / "docker-proxy"
PASSWORD = "the docker-proxy test's admin password"


def docker(*arguments: str) -> str:
    return subprocess.run([str(DOCKER_CLI), *arguments], capture_output=True, text=True).stdout


@pytest.fixture
def server(tmp_path: Path, base_image: str, builder_image: str) -> Iterator[RacetrackServer]:
    """``racetrack up`` on the Docker target; its containers and images removed afterwards."""
    home = tmp_path / "home"
    home.mkdir()
    settings: dict[str, Any] = settings_for(base_image)
    settings["build"]["base_images"][DEFAULT_BUILDER_IMAGE] = builder_image
    (home / "config.yaml").write_text(json.dumps({"targets": {"docker": settings}}))
    env = {**QUICK_ENV, "RACETRACK_INFRASTRUCTURE_TARGET": "docker"}
    try:
        with RacetrackServer(home, admin_password=PASSWORD, env=env) as running:
            running.login("admin", PASSWORD)
            yield running
    finally:
        label = f"{LABEL_HOME}={home_digest(home / 'targets' / 'docker')}"
        for container in docker("ps", "-aq", "--filter", f"label={label}").split():
            docker("rm", "-f", container)
        for image in docker("images", "--format", "{{.Repository}}:{{.Tag}}").split():
            if image.startswith(f"{REPOSITORY}/docker-proxy:"):
                docker("image", "rm", "-f", image)


def cli(server: RacetrackServer, config: Path, *args: str, stdin: str = "") -> str:
    done = subprocess.run(
        [sys.executable, "-m", "racetrack_cli", *args],
        cwd=SAMPLE, input=stdin, capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "RACETRACK_CONFIG_DIR": str(config)},
    )  # fmt: skip
    assert done.returncode == 0, f"racetrack {' '.join(args)}: {done.stderr}\n{server.log()}"
    return done.stdout


def nothing_listens_on_the_host(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_the_docker_proxy_sample_on_the_docker_target(
    server: RacetrackServer, tmp_path: Path
) -> None:
    config = tmp_path / "cli"
    cli(server, config, "set", "remote", server.remote)
    cli(server, config, "login", "--username", "admin", stdin=f"{PASSWORD}\n")
    cli(server, config, "deploy")
    answer = cli(server, config, "call", "docker-proxy", "/api/v1/perform", '{"number": 7907}')
    assert answer == "true\n"
    job = server.api("GET", "/job/docker-proxy/0.0.1").json()
    assert job["infrastructure_target"] == "docker"

    # Through Pub, with and without a token; the author's errors come back as they are.
    assert server.call("docker-proxy", "latest", {"number": 7908}).json() is False
    assert server.call("docker-proxy", "latest", {"number": 7907}, token=None).status_code == 401
    bad = server.call("docker-proxy", "latest", {"number": "x"})
    assert bad.status_code == 400
    assert "give" in bad.json()["error"]

    # The runtime contract, answered by the proxy whatever the author's server does.
    base = f"{server.pub}/job/docker-proxy/latest"
    with httpx.Client(headers={"X-Racetrack-Auth": server.token}, timeout=10) as client:
        live = client.get(f"{base}/live").json()
        assert live == {"live": True, "deployment_timestamp": job["deployment_timestamp"]}
        assert client.get(f"{base}/ready").json() == {"ready": True}
        assert client.get(f"{base}/health").json()["status"] == "pass"
        assert "job_proxy_calls_total" in client.get(f"{base}/metrics").text
        docs = client.get(f"{base}/docs")
        assert docs.status_code == 200
        assert "swagger-ui/swagger-ui-bundle.js" in docs.text
        assert client.get(f"{base}/swagger-ui/swagger-ui-bundle.js").status_code == 200
        assert "/api/v1/{path}" in client.get(f"{base}/openapi.json").json()["paths"]
        assert client.get(f"{base}/api/v1/version").json() == {"job_version": "0.0.1"}
    # The author's server listens on 7004 in the container's own network namespace only.
    assert nothing_listens_on_the_host(7004)

    # A second version with two replicas, from an original-style Dockerfile (FROM
    # python:3.11-slim, mapped by the site to the local base image): three servers on 7004.
    original = tmp_path / "original"
    shutil.copytree(SAMPLE, original)
    dockerfile = (original / "Dockerfile").read_text()
    dockerfile = dockerfile.replace("FROM racetrack/python3-base:bookworm", "FROM python:3.11-slim")
    (original / "Dockerfile").write_text(dockerfile)
    server_py = (original / "server.py").read_text()
    server_py = server_py.replace(
        '        if self.path == "/version":',
        '        if self.path == "/pub-live":  # a call out to Pub, from the private network\n'
        "            import urllib.request\n"
        '            with urllib.request.urlopen(os.environ["PUB_URL"] + "/live") as pub:\n'
        "                self.answer(200, json.loads(pub.read()))\n"
        "            return\n"
        '        if self.path == "/version":',
    )
    (original / "server.py").write_text(server_py)
    second = server.deploy_folder(
        original, manifest={"version": "0.0.2", "replicas": 2}, timeout=600
    )
    assert second["status"] == "done", f"{second.get('error')}\n{server.log()}"
    for version in ("0.0.1", "0.0.2"):
        got = httpx.get(
            f"{server.pub}/job/docker-proxy/{version}/api/v1/version",
            headers={"X-Racetrack-Auth": server.token}, timeout=10,
        )  # fmt: skip
        assert got.json() == {"job_version": version}
    label = "label=racetrack.job=docker-proxy"
    running = docker("ps", "-q", "--filter", label, "--filter", "label=racetrack.version=0.0.2")
    assert len(running.split()) == 2, docker("ps", "--format", "{{.Names}} {{.Labels}}")
    pub_live = httpx.get(
        f"{server.pub}/job/docker-proxy/0.0.2/api/v1/pub-live",
        headers={"X-Racetrack-Auth": server.token}, timeout=10,
    )  # fmt: skip
    assert pub_live.status_code == 200, pub_live.text
    assert pub_live.json()["service"] == "pub"

    # A redeploy under load loses no call.
    results: list[int] = []
    failures: list[str] = []
    done = threading.Event()

    def call_repeatedly() -> None:
        with httpx.Client(timeout=30, headers={"X-Racetrack-Auth": server.token}) as client:
            while not done.is_set() or len(results) < 100:
                answer = client.post(f"{base}/api/v1/perform", json={"number": 7907})
                ok = answer.text.strip() == "true"
                results.append(answer.status_code if ok else -answer.status_code)
                if not ok:
                    failures.append(answer.text)

    callers = [threading.Thread(target=call_repeatedly) for _ in range(3)]
    for caller in callers:
        caller.start()
    try:
        redeployed = server.deploy_folder(
            original, manifest={"version": "0.0.2", "replicas": 2}, force=True
        )
        time.sleep(3)
    finally:
        done.set()
        for caller in callers:
            caller.join()
    assert redeployed["status"] == "done", redeployed
    assert set(results) == {200}, f"{len(failures)} calls failed: {failures[:3]}"

    # A bad Dockerfile line fails the build with that line in the build log; 0.0.2 serves on.
    broken = tmp_path / "broken"
    shutil.copytree(SAMPLE, broken)
    text = (broken / "Dockerfile").read_text().replace("COPY server.py .", "RUN no-such-tool --x")
    (broken / "Dockerfile").write_text(text)
    failed = server.deploy_folder(broken, manifest={"version": "0.0.3"}, timeout=600)
    assert failed["status"] == "failed"
    assert "building the job's image failed" in failed["error"]
    logs = server.api("GET", f"/deploy/{failed['id']}/build-logs").json()["logs"]
    assert "no-such-tool" in logs
    assert "not found" in logs
    assert server.call("docker-proxy", "latest", {"number": 7907}).json() is True
