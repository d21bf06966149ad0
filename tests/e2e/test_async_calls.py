"""End to end: asynchronous calls through a real ``racetrack up``, across restarts of it.

``racetrack up`` serves Lifecycle and Pub in one process, so stopping and starting it restarts
both (and the jobs, which Lifecycle restores from the same home and database).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from racetrack_core.testing.server import QUICK_ENV, RacetrackServer
from tests.e2e.test_up import deploy_primer, replica_pid

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
def racetrack_server_env() -> Mapping[str, str]:
    # Quick take-overs and retries, so that a restart is waited out in seconds.
    return {
        **QUICK_ENV,
        "RACETRACK_PUB_ASYNC_ADOPT_AFTER": "2",
        "RACETRACK_PUB_ASYNC_RETRY_DELAY": "1",
        "RACETRACK_PUB_ASYNC_MAX_ATTEMPTS": "60",
        "RACETRACK_PUB_ASYNC_POLL_TIMEOUT": "5",
    }


def submit(server: RacetrackServer, name: str, payload: Any) -> str:
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


def poll(server: RacetrackServer, task_id: str, within: float = 120) -> httpx.Response:
    """Poll (no token: the task id is the capability) until the answer is no longer 202."""
    deadline = time.monotonic() + within
    while True:
        answer = httpx.get(f"{server.pub}/async/task/{task_id}/poll", timeout=30)
        if answer.status_code != 202 or time.monotonic() > deadline:
            return answer


def deploy_sleeper(server: RacetrackServer, tmp_path: Path) -> None:
    folder = tmp_path / "sleeper"
    folder.mkdir()
    for name, text in SLOW_JOB.items():
        (folder / name).write_text(text)
    record = server.deploy_folder(folder)
    assert record["status"] == "done", record


def test_an_async_call_answers_after_a_restart_of_the_services(server: RacetrackServer) -> None:
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


def test_a_call_running_during_a_restart_is_run_again(
    server: RacetrackServer, tmp_path: Path
) -> None:
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


def test_a_deleted_job_fails_the_task_with_a_clear_error(
    server: RacetrackServer, tmp_path: Path
) -> None:
    server.login()
    deploy_sleeper(server, tmp_path)
    task_id = submit(server, "sleeper", {"seconds": 3})
    time.sleep(0.5)

    # The job dies mid-call (Pub retries a connection broken before an answer), and by the
    # retry it has been deleted.
    os.kill(replica_pid(server, "sleeper"), signal.SIGKILL)
    assert server.api("DELETE", "/job/sleeper/0.0.1").json() is None

    answer = poll(server, task_id)
    assert answer.status_code == 500, answer.text
    error = answer.json()["error"]
    assert error.startswith("Asynchronous call failed: job sleeper 0.0.1 cannot be called any more")
    assert "Job was not found" in error
