"""End to end: asynchronous calls through a real ``racetrack up``, across restarts of it.

``racetrack up`` serves Lifecycle and Pub in one process, so stopping and starting it restarts
both (and the jobs, which Lifecycle restores from the same home and database).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from racetrack_core.manifest import load_manifest
from racetrack_core.source import pack_build_context
from tests.e2e.test_up import Server, deploy_primer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SLOW_JOB = {
    "job.yaml": """\
name: sleeper
owner_email: sample@example.com
jobtype: python3:latest
git:
  remote: https://github.com/TheRacetrack/racetrack
jobtype_extra:
  entrypoint_path: 'entrypoint.py'
  entrypoint_class: 'JobEntrypoint'
""",
    "entrypoint.py": """\
import time


class JobEntrypoint:
    def perform(self, seconds: float) -> dict:
        time.sleep(seconds)
        return {"slept": seconds}
""",
}


@pytest.fixture
def server(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    # Quick take-overs and retries, so that a restart is waited out in seconds.
    monkeypatch.setenv("RACETRACK_PUB_ASYNC_ADOPT_AFTER", "2")
    monkeypatch.setenv("RACETRACK_PUB_ASYNC_RETRY_DELAY", "1")
    monkeypatch.setenv("RACETRACK_PUB_ASYNC_MAX_ATTEMPTS", "60")
    monkeypatch.setenv("RACETRACK_PUB_ASYNC_POLL_TIMEOUT", "5")
    running = Server(home=tmp_path / "home", database_url=database_url)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def submit(server: Server, name: str, payload: Any) -> str:
    answer = httpx.post(
        f"{server.pub}/async/new/job/{name}/latest/api/v1/perform",
        json=payload,
        headers={"X-Racetrack-Auth": server.token},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "ongoing"
    task_id: str = answer.json()["task_id"]
    return task_id


def poll(server: Server, task_id: str, within: float = 120) -> httpx.Response:
    """Poll (no token: the task id is the capability) until the answer is no longer 202."""
    deadline = time.monotonic() + within
    while True:
        answer = httpx.get(f"{server.pub}/async/task/{task_id}/poll", timeout=30)
        if answer.status_code != 202 or time.monotonic() > deadline:
            return answer


def deploy_sleeper(server: Server, tmp_path: Path) -> None:
    folder = tmp_path / "sleeper"
    folder.mkdir()
    for name, text in SLOW_JOB.items():
        (folder / name).write_text(text)
    manifest = load_manifest(folder / "job.yaml").data
    record = server.deploy({"manifest": manifest, "build_context": pack_build_context(folder)})
    assert record["status"] == "done", record


def test_an_async_call_answers_after_a_restart_of_the_services(server: Server) -> None:
    server.login()
    assert deploy_primer(server)["status"] == "done"
    task_id = submit(server, "primer", {"number": 7907})

    server.stop()
    server.start()

    answer = poll(server, task_id)
    assert answer.status_code == 200, f"{answer.text}\n{server.log()}"
    assert answer.json() is True
    status = httpx.get(f"{server.pub}/async/task/{task_id}/status", timeout=10)
    assert status.json() == {"task_id": task_id, "status": "completed"}


def test_a_call_running_during_a_restart_is_run_again(server: Server, tmp_path: Path) -> None:
    server.login()
    deploy_sleeper(server, tmp_path)
    task_id = submit(server, "sleeper", {"seconds": 2})
    time.sleep(0.5)  # the job is sleeping on it

    server.stop()
    server.start()

    answer = poll(server, task_id)
    assert answer.status_code == 200, f"{answer.text}\n{server.log()}"
    assert answer.json() == {"slept": 2}
    assert "taking over async task" in server.log()  # the restarted Pub ran it again
    assert server.token not in server.log()
    assert task_id not in server.log()


def test_a_deleted_job_fails_the_task_with_a_clear_error(server: Server, tmp_path: Path) -> None:
    server.login()
    deploy_sleeper(server, tmp_path)
    task_id = submit(server, "sleeper", {"seconds": 3})
    time.sleep(0.5)

    # The job dies mid-call (Pub retries a connection broken before an answer), and by the
    # retry it has been deleted.
    os.kill(sleeper_pid(server), signal.SIGKILL)
    assert server.api("DELETE", "/job/sleeper/0.0.1").json() is None

    answer = poll(server, task_id)
    assert answer.status_code == 500, answer.text
    error = answer.json()["error"]
    assert error.startswith("Asynchronous call failed: job sleeper 0.0.1 cannot be called any more")
    assert "Job was not found" in error


def sleeper_pid(server: Server) -> int:
    job = server.api("GET", "/job/sleeper/latest").json()
    port = int(job["internal_name"].rsplit(":", 1)[1])
    for record in (server.home / "targets" / "local" / "replicas").glob("*.json"):
        data = json.loads(record.read_text())
        if data["port"] == port:
            pid: int = data["pid"]
            return pid
    raise AssertionError(f"no pid file for port {port}")
