"""Faults: a job's process killed in the middle of a call through Pub (issue 15).

The caller gets an answer at once that says the job failed (not a 500 from Pub, not a hang),
the local target restarts the job on its port, and the next call succeeds.
"""

from __future__ import annotations

import os
import signal
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from racetrack_core.testing.server import RacetrackServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SLOW_CALL = """
import os
import time


class JobEntrypoint:
    def perform(self, seconds: float) -> int:
        time.sleep(seconds)
        return os.getpid()

    def docs_input_example(self) -> dict:
        return {"seconds": 0}
"""


def test_a_call_whose_job_is_killed_gets_a_clear_error_and_the_job_comes_back(
    racetrack_server: RacetrackServer, tmp_path: Path
) -> None:
    job = tmp_path / "job"
    job.mkdir()
    (job / "entrypoint.py").write_text(SLOW_CALL)
    (job / "job.yaml").write_text(
        textwrap.dedent(
            """\
            name: killed
            version: 0.0.1
            owner_email: owner@example.com
            jobtype: python3:latest
            jobtype_extra:
              entrypoint_path: entrypoint.py
            """
        )
    )
    server = racetrack_server
    server.login()
    record = server.deploy_folder(job, timeout=180)
    assert record["status"] == "done", record
    pid = server.call("killed", "0.0.1", {"seconds": 0}).json()

    answers: list[Any] = []
    caller = threading.Thread(
        target=lambda: answers.append(server.call("killed", "0.0.1", {"seconds": 30}))
    )
    started = time.monotonic()
    caller.start()
    time.sleep(1.5)  # the call is inside perform now
    os.kill(pid, signal.SIGKILL)
    caller.join(timeout=20)
    assert not caller.is_alive(), "the call hung after its job was killed"
    [answer] = answers
    assert time.monotonic() - started < 15
    assert answer.status_code == 502, answer.text
    assert answer.json()["error"] == (
        "Reverse proxy error: job killed 0.0.1 broke the connection before answering; "
        "it may have died"
    )

    deadline = time.monotonic() + 60
    while True:  # restarted by the local target, on its port, behind the same address
        again = server.call("killed", "0.0.1", {"seconds": 0})
        if again.status_code == 200:
            break
        assert time.monotonic() < deadline, again.text
        time.sleep(0.5)
    assert again.json() != pid
