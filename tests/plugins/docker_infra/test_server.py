"""The Docker target behind a real ``racetrack up``: deploy, call through Pub, redeploy under
load, restart adoption, and moves between ``local`` and ``docker``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from racetrack_core.testing.server import QUICK_ENV, RacetrackServer
from tests.plugins.docker_infra.conftest import REPO, Jobs, settings_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
PRIMER = REPO / "sample" / "python-primer"
CLASS = REPO / "sample" / "python-class"
PASSWORD = "the docker tests' admin password"
CALLERS = 50


class DockerServer(RacetrackServer):
    """``racetrack up --infra docker``: new jobs go to the Docker target."""

    def command(self) -> list[str]:
        return [*super().command(), "--infra", "docker"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, jobs: Jobs) -> Iterator[RacetrackServer]:
    """``racetrack up --infra docker``, building FROM the bootstrapped python3 base image."""
    home = tmp_path_factory.mktemp("server") / "home"
    home.mkdir()
    config = {"targets": {"docker": settings_for(jobs.base_image)}}
    (home / "config.yaml").write_text(json.dumps(config), encoding="utf-8")
    running = DockerServer(home, admin_password=PASSWORD, env=QUICK_ENV)
    jobs.home = home / "targets" / "docker"  # the fixture's cleanup removes its containers
    with running:
        running.login("admin", PASSWORD)
        yield running


def job_record(server: RacetrackServer, name: str, version: str) -> dict[str, Any]:
    answer: dict[str, Any] = server.api("GET", f"/job/{name}/{version}").json()
    return answer


def test_primer_deployed_through_the_api_answers_through_pub(server: RacetrackServer) -> None:
    record = server.deploy_folder(PRIMER)
    assert record["status"] == "done", f"{record.get('error')}\n{server.log()}"
    assert job_record(server, "primer", "0.0.1")["infrastructure_target"] == "docker"
    answer = server.call("primer", "0.0.1", {"number": 7907})
    assert (answer.status_code, answer.json()) == (200, True)
    logs = server.api("GET", "/job/primer/0.0.1/build-logs").json()["logs"]
    assert "building image racetrack-job/primer:0.0.1-" in logs or "building image" in logs


def test_python_class_deployed_with_racetrack_deploy(
    server: RacetrackServer, jobs: Jobs, tmp_path: Path
) -> None:
    env = {**os.environ, "RACETRACK_CONFIG_DIR": str(tmp_path / "config")}
    racetrack = [sys.executable, "-m", "racetrack_cli"]

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*racetrack, *args], cwd=CLASS, env=env, input=stdin, capture_output=True, text=True
        )

    assert run("set", "remote", server.remote).returncode == 0
    assert run("login", "--username", "admin", stdin=f"{PASSWORD}\n").returncode == 0
    done = run("deploy")
    assert done.returncode == 0, f"{done.stderr}\n{server.log()}"
    listed = json.loads(run("list", "--json").stdout)
    [record] = [job for job in listed if job["name"] == "python-class"]
    assert record["infrastructure_target"] == "docker"
    answer = server.call("python-class", record["version"], {"planet": "Mars"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["planet"] == "Mars"
    logs = run("logs", "python-class")
    assert "Uvicorn running on http://127.0.0.1" in logs.stdout, logs.stderr
    assert "==> building" in run("build-logs", "python-class").stdout
    deleted = run("delete", "python-class", "--version", record["version"])
    assert deleted.returncode == 0, deleted.stderr
    label = "racetrack.job=python-class"
    assert not jobs.client.containers.list(all=True, filters={"label": label})


def test_a_redeploy_under_load_loses_no_call(server: RacetrackServer) -> None:
    before = job_record(server, "primer", "0.0.1")
    url = f"{server.pub}/job/primer/0.0.1/live"
    headers = {"X-Racetrack-Auth": server.token}
    stop = threading.Event()
    failures: list[str] = []
    timestamps: set[int] = set()
    lock = threading.Lock()

    def caller() -> None:
        with httpx.Client(timeout=10, trust_env=False) as client:
            while not stop.is_set():
                try:
                    answer = client.get(url, headers=headers)
                    stamp = answer.json()["deployment_timestamp"]
                except (httpx.HTTPError, ValueError, KeyError) as error:
                    with lock:
                        failures.append(repr(error))
                    continue
                with lock:
                    if answer.status_code != 200:
                        failures.append(f"{answer.status_code} {answer.text[:200]}")
                    timestamps.add(int(stamp))

    threads = [threading.Thread(target=caller) for _ in range(CALLERS)]
    for thread in threads:
        thread.start()
    try:
        record = server.deploy_folder(PRIMER, force=True)
        assert record["status"] == "done", record.get("error")
        after = job_record(server, "primer", "0.0.1")
        # Keep calling past the old container's retirement (Pub's cache, then the drain).
        stop.wait(5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert after["deployment_timestamp"] > before["deployment_timestamp"]
    assert {before["deployment_timestamp"], after["deployment_timestamp"]} <= timestamps


def test_a_restarted_server_adopts_its_containers(server: RacetrackServer, jobs: Jobs) -> None:
    label = "racetrack.job=primer"
    before = {c.id for c in jobs.client.containers.list(filters={"label": label})}
    server.stop()
    server.start()
    server.login("admin", PASSWORD)
    answer = server.call("primer", "0.0.1", {"number": 7907})
    assert (answer.status_code, answer.json()) == (200, True)
    after = {c.id for c in jobs.client.containers.list(filters={"label": label})}
    assert after == before


def test_a_job_moves_to_local_and_back(server: RacetrackServer) -> None:
    for target in ("local", "docker"):
        moved = server.api(
            "POST", "/job/primer/0.0.1/move", json={"infrastructure_target": target}, timeout=300
        )
        assert moved.status_code == 200, moved.text
        assert job_record(server, "primer", "0.0.1")["infrastructure_target"] == target
        answer = server.call("primer", "0.0.1", {"number": 7907})
        assert (answer.status_code, answer.json()) == (200, True), (
            f"{target}: {answer.text}\n{server.log()[-6000:]}"
        )


def test_two_replicas_both_serve_calls_through_pub(server: RacetrackServer) -> None:
    record = server.deploy_folder(PRIMER, manifest={"version": "0.0.2", "replicas": 2})
    assert record["status"] == "done", record.get("error")
    assert len(job_record(server, "primer", "0.0.2")["replica_internal_names"]) == 2
    headers = {"X-Racetrack-Auth": server.token}
    seen = set()
    with httpx.Client(timeout=10, trust_env=False) as client:
        for _ in range(6):
            health = client.get(f"{server.pub}/job/primer/0.0.2/health", headers=headers)
            assert health.status_code == 200, health.text
            seen.add(health.json()["replica"])
    assert len(seen) == 2, seen  # Pub takes the instances in turn
    for _ in range(4):
        answer = server.call("primer", "0.0.2", {"number": 7907})
        assert (answer.status_code, answer.json()) == (200, True)
