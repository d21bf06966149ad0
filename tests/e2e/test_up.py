"""End to end on the embedded default: ``racetrack up``, deploy, call through Pub, survive.

Each test drives a real server process with real job processes, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from racetrack_core.manifest import load_manifest
from racetrack_core.testing.gitserver import GitServer
from racetrack_core.testing.server import RacetrackServer

PRIMER_DIR = Path(__file__).resolve().parents[2] / "sample" / "python-primer"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

UNAUTHENTICATED = {"error": "Unauthenticated: no header X-Racetrack-Auth: not logged in"}


def primer_manifest(**changes: Any) -> dict[str, Any]:
    return {**load_manifest(PRIMER_DIR / "job.yaml").data, **changes}


def deploy_primer(server: RacetrackServer, **body: Any) -> dict[str, Any]:
    return server.deploy_folder(PRIMER_DIR, **body)


def broken_job(folder: Path, name: str = "primer") -> Path:
    """A job folder named ``name`` (primer's manifest) whose entrypoint fails as it starts,
    with ``this job cannot start``."""
    folder.mkdir()
    (folder / "job.yaml").write_text(
        (PRIMER_DIR / "job.yaml").read_text().replace("name: primer", f"name: {name}")
    )
    (folder / "entrypoint.py").write_text(
        "class JobEntrypoint:\n"
        "    def __init__(self) -> None:\n"
        "        raise RuntimeError('this job cannot start')\n"
        "\n"
        "    def perform(self) -> None: ...\n"
    )
    return folder


def test_deploy_from_an_uploaded_context_and_call_through_pub(server: RacetrackServer) -> None:
    server.login()
    record = deploy_primer(server)
    assert record["status"] == "done", record
    phases = [step["phase"] for step in record["phases"]]
    assert phases == [
        "queued",
        "fetching source",
        "validating manifest",
        "building",
        "starting",
        "waiting for live and ready",
        "switching traffic",
        "post-deploy hooks",
    ]
    assert record["job"]["pub_url"] == f"{server.pub}/job/primer/0.0.1"

    answer = server.call("primer", "latest", {"number": 7907})
    assert answer.status_code == 200, answer.text
    assert answer.json() is True
    assert server.call("primer", "0.0.1", {"number": 7906}).json() is False

    refused = server.call("primer", "latest", {"number": 7907}, token=None)
    assert refused.status_code == 401
    assert refused.json() == UNAUTHENTICATED

    again = server.api("POST", "/deploy", json={"manifest": primer_manifest()})
    assert again.status_code == 409
    assert "--force" in again.json()["error"]

    jobs = server.api("GET", "/job").json()
    assert [(job["name"], job["version"], job["status"]) for job in jobs] == [
        ("primer", "0.0.1", "running")
    ]
    logs = server.api("GET", "/job/primer/latest/logs?tail=0").json()["logs"]
    assert isinstance(logs, str)
    build_logs = server.api("GET", "/job/primer/0.0.1/build-logs").json()["logs"]
    assert "==> building" in build_logs
    with httpx.stream(
        "GET",
        f"{server.lifecycle}/api/v1/job/primer/latest/logs/stream?tail=3",
        headers={"X-Racetrack-Auth": server.token},
        timeout=10,
    ) as followed:
        assert followed.headers["content-type"].startswith("text/plain")
        first = next(followed.iter_lines())
    assert first in logs

    assert server.api("DELETE", "/job/primer/0.0.1").json() is None
    time.sleep(1.2)  # Pub's cached answer (1 s in these tests) expires
    gone = server.call("primer", "latest", {"number": 7907})
    assert gone.status_code == 404
    assert gone.json()["error"].startswith("Job was not found")


def test_deploy_from_a_private_git_repository(server: RacetrackServer, tmp_path: Path) -> None:
    server.login()
    files = {
        f"sample/python-primer/{path.name}": path.read_text()
        for path in PRIMER_DIR.iterdir()
        if path.is_file()
    }
    with GitServer(tmp_path / "git", username="deployer", password="s3cret-git-token") as git:
        remote = git.create_repo("jobs.git", files)
        manifest = primer_manifest(git={"remote": remote, "directory": "sample/python-primer"})
        refused = server.deploy({"manifest": manifest})
        assert refused["status"] == "failed"
        assert "racetrack set credentials" in refused["error"]

        record = server.deploy(
            {
                "manifest": manifest,
                "git_credentials": {"username": "deployer", "password": "s3cret-git-token"},
                "secret_vars": {"runtime_env": {"API_KEY": "runtime-secret-value"}},
            }
        )
    assert record["status"] == "done", record
    assert server.call("primer", "latest", {"number": 7907}).json() is True

    # Neither the git token nor the runtime secret is in any answer, log or the database file.
    seen = json.dumps(server.api("GET", "/deploy").json()) + json.dumps(
        server.api("GET", "/job").json()
    )
    seen += server.api("GET", "/job/primer/0.0.1/build-logs").json()["logs"]
    seen += server.log()
    for path in server.home.rglob("*"):
        if path.is_file() and path.suffix in {".db", ".db-wal", ".json", ".log"}:
            seen += path.read_bytes().decode("latin-1")
    assert "s3cret-git-token" not in seen
    assert "runtime-secret-value" not in seen


def test_calls_keep_succeeding_during_a_redeploy(server: RacetrackServer) -> None:
    server.login()
    assert deploy_primer(server)["status"] == "done"
    results: list[int] = []
    done = threading.Event()

    def call_repeatedly() -> None:
        with httpx.Client(timeout=30) as client:
            while not done.is_set() or len(results) < 200:
                answer = client.post(
                    f"{server.pub}/job/primer/latest/api/v1/perform",
                    json={"number": 7907},
                    headers={"X-Racetrack-Auth": server.token},
                )
                results.append(answer.status_code if answer.json() is True else -1)

    callers = [threading.Thread(target=call_repeatedly) for _ in range(4)]
    for caller in callers:
        caller.start()
    try:
        record = deploy_primer(server, force=True)
        time.sleep(3)  # the old replica retires after Pub's cache moved on
    finally:
        done.set()
        for caller in callers:
            caller.join()
    assert record["status"] == "done", record
    assert len(results) >= 200
    assert set(results) == {200}, f"{len([r for r in results if r != 200])} calls failed"


def test_a_killed_job_and_a_restarted_server_both_leave_the_job_callable(
    server: RacetrackServer,
) -> None:
    server.login()
    assert deploy_primer(server)["status"] == "done"

    os.kill(replica_pid(server), signal.SIGKILL)
    deadline = time.monotonic() + 30
    answer = None
    while time.monotonic() < deadline:
        answer = server.call("primer", "latest", {"number": 7907})
        if answer.status_code == 200:
            break
        time.sleep(0.2)
    assert answer is not None
    assert answer.status_code == 200, answer.text

    server.stop()
    server.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = server.call("primer", "latest", {"number": 7907})
        if answer.status_code == 200:
            break
        time.sleep(0.2)
    assert answer.status_code == 200, f"{answer.text}\n{server.log()}"
    assert answer.json() is True


def test_a_failed_redeploy_keeps_the_previous_version_serving(
    server: RacetrackServer, tmp_path: Path
) -> None:
    server.login()
    assert deploy_primer(server)["status"] == "done"
    record = server.deploy_folder(broken_job(tmp_path / "broken"), force=True)
    assert record["status"] == "failed"
    assert "this job cannot start" in server.api(
        "GET", f"/deploy/{record['id']}/build-logs"
    ).json()["logs"] + (record["error"] or "")
    assert server.call("primer", "latest", {"number": 7907}).json() is True


def replica_pid(server: RacetrackServer, name: str = "primer") -> int:
    """The process id of the latest version of job ``name``, from the local target's files."""
    job = server.api("GET", f"/job/{name}/latest").json()
    port = int(job["internal_name"].rsplit(":", 1)[1])
    for record in (server.home / "targets" / "local" / "replicas").glob("*.json"):
        data = json.loads(record.read_text())
        if data["port"] == port:
            pid: int = data["pid"]
            return pid
    raise AssertionError(f"no pid file for port {port}")
