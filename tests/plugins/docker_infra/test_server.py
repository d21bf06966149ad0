"""The Docker target behind a real ``racetrack up``: deploy, call through Pub, redeploy under
load, restart adoption, and moves between ``local`` and ``docker``."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
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


def test_python_class_deployed_through_the_api_answers_through_pub(
    server: RacetrackServer,
) -> None:
    record = server.deploy_folder(CLASS)
    assert record["status"] == "done", f"{record.get('error')}\n{server.log()}"
    [job] = [job for job in server.api("GET", "/job").json() if job["name"] == "python-class"]
    assert job["infrastructure_target"] == "docker"
    answer = server.call("python-class", job["version"], {"planet": "Venus"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["planet"] == "Venus"
    server.api("DELETE", f"/job/python-class/{job['version']}")


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


#: Calls that an instance had taken when it was killed fail (and those written on a kept-alive
#: connection to it in the instant before Pub saw the connection close); every call that starts
#: this long after the kill must be answered by the other instance (docs/pub.md).
FAILOVER_WINDOW = 1.0


def instance_container(jobs: Jobs, record: dict[str, Any], instance: int) -> Any:
    replica = json.loads(job_replica(record))["id"]
    labels = [f"racetrack.replica={replica}", f"racetrack.instance={instance}"]
    [container] = jobs.client.containers.list(all=True, filters={"label": labels})
    return container


def job_replica(record: dict[str, Any]) -> str:
    """The replica JSON of a job, as the job record keeps it (read from the server's database)."""
    replica: str = record["_replica"]
    return replica


def with_replica(server: RacetrackServer, name: str, version: str) -> dict[str, Any]:
    """The job record, plus its recorded replica (``_replica``) from the server's database."""
    record = job_record(server, name, version)
    with sqlite3.connect(server.home / "racetrack.db") as database:
        [(replica,)] = database.execute(
            "SELECT replica FROM job WHERE name = ? AND version = ?", (name, version)
        ).fetchall()
    return {**record, "_replica": replica}


def port_claims(server: RacetrackServer, replica_id: str) -> list[int]:
    with sqlite3.connect(server.home / "racetrack.db") as database:
        rows = database.execute(
            "SELECT port FROM replica_port WHERE replica_id = ? ORDER BY port", (replica_id,)
        ).fetchall()
    return [port for (port,) in rows]


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_a_killed_replica_leaves_pubs_rotation_shows_in_the_status_and_comes_back(
    server: RacetrackServer, jobs: Jobs
) -> None:
    """``replicas: 2``: ``docker kill`` one container while clients call the job through Pub;
    no call that starts after the failover window fails, the job's ``instances`` name the one
    that is down, and the watcher starts it again."""

    def both_ready() -> bool:  # the watcher's first round after the deployment reports them
        instances = job_record(server, "primer", "0.0.2")["instances"]
        return [i["status"] for i in instances] == ["ready", "ready"]

    wait_for(both_ready, "the watcher to report both instances ready")
    record = with_replica(server, "primer", "0.0.2")  # deployed by the test above
    killed = instance_container(jobs, record, 1)
    killed_url = f"http://127.0.0.1:{killed.labels['racetrack.port']}"
    assert [i["status"] for i in record["instances"]] == ["ready", "ready"], record["instances"]
    url = f"{server.pub}/job/primer/0.0.2/health"
    headers = {"X-Racetrack-Auth": server.token}
    stop = threading.Event()
    answers: list[tuple[float, float, str]] = []  # started, ended, who answered (or the error)
    lock = threading.Lock()

    def caller() -> None:
        with httpx.Client(timeout=10, trust_env=False) as client:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    answer = client.get(url, headers=headers)
                    who = answer.json()["replica"] if answer.status_code == 200 else answer.text
                except (httpx.HTTPError, ValueError, KeyError) as error:
                    who = f"failed: {error!r}"
                with lock:
                    answers.append((started, time.monotonic(), who))

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        killed_at = time.monotonic()
        killed.kill()  # docker kill: Docker does not restart a container stopped by hand

        def down() -> Any:
            instances = job_record(server, "primer", "0.0.2")["instances"]
            return [i for i in instances if i["status"] != "ready"]

        [seen_down] = wait_for(down, "the job's status to show the killed instance down")
        assert (seen_down["url"], seen_down["name"]) == (killed_url, killed.name)
        assert job_record(server, "primer", "0.0.2")["status"] == "running"  # the other serves

        def back() -> bool:
            instances = job_record(server, "primer", "0.0.2")["instances"]
            return [i["status"] for i in instances] == ["ready", "ready"]

        wait_for(back, "the killed instance to come back")
        came_back = time.monotonic()
        time.sleep(3)  # Pub's prober puts it back in the rotation within a second
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    names = {killed.name, instance_container(jobs, record, 0).name}
    failed = [a for a in answers if a[2] not in names]
    print(f"{len(answers)} calls, {len(failed)} failed, all within the failover window")
    late = [a for a in failed if a[0] > killed_at + FAILOVER_WINDOW]
    assert late == [], late[:5]
    during = {who for started, _, who in answers if killed_at + FAILOVER_WINDOW < started}
    assert names <= during  # both served, the killed one again after it came back
    after = {who for started, _, who in answers if started > came_back + 1.5}
    assert after == names, after
    assert instance_container(jobs, record, 1).id == killed.id  # started again, same container


def test_a_container_removed_by_hand_is_started_again_on_its_claimed_port(
    server: RacetrackServer, jobs: Jobs
) -> None:
    record = server.deploy_folder(PRIMER, manifest={"version": "0.0.4"})
    assert record["status"] == "done", record.get("error")
    record = with_replica(server, "primer", "0.0.4")
    replica_id = json.loads(job_replica(record))["id"]
    port = int(record["internal_name"].rsplit(":", 1)[1])
    assert port_claims(server, replica_id) == [port]
    [container] = jobs.client.containers.list(
        all=True, filters={"label": f"racetrack.replica={replica_id}"}
    )
    container.remove(force=True)  # docker rm -f

    def recreated() -> list[Any]:
        found = jobs.client.containers.list(filters={"label": f"racetrack.replica={replica_id}"})
        return [c for c in found if c.id != container.id]

    [again] = wait_for(recreated, "the container to be started again")
    assert again.labels["racetrack.port"] == str(port)
    wait_for(lambda: job_record(server, "primer", "0.0.4")["status"] == "running", "running")
    answer = server.call("primer", "0.0.4", {"number": 7907})
    assert (answer.status_code, answer.json()) == (200, True), answer.text
    assert port_claims(server, replica_id) == [port]  # the same claim, not a second one

    assert server.api("DELETE", "/job/primer/0.0.4").status_code == 200
    assert port_claims(server, replica_id) == []
