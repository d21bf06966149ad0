"""Faults: a job that starts but never becomes ready (issue 15).

Its deployment must fail once ``job_ready_timeout`` has passed, with an error that says so,
and its build log must carry what the job printed; nothing stays in progress and the replica
is stopped.
"""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from racetrack_core.testing.server import QUICK_ENV, RacetrackServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

NEVER_READY = """
import time


class JobEntrypoint:
    def __init__(self) -> None:
        print("loading a model that never finishes loading", flush=True)
        time.sleep(600)

    def perform(self) -> bool:
        return True
"""


def test_a_job_that_never_becomes_ready_fails_after_the_timeout_with_its_output(
    tmp_path: Path,
) -> None:
    job = tmp_path / "job"
    job.mkdir()
    (job / "entrypoint.py").write_text(NEVER_READY)
    (job / "job.yaml").write_text(
        textwrap.dedent(
            """\
            name: never-ready
            version: 0.0.1
            owner_email: owner@example.com
            jobtype: python3:latest
            jobtype_extra:
              entrypoint_path: entrypoint.py
            """
        )
    )
    env = {**QUICK_ENV, "RACETRACK_JOB_READY_TIMEOUT": "3"}
    with RacetrackServer(tmp_path / "racetrack-home", env=env) as server:
        server.login()
        started = time.monotonic()
        record = server.deploy_folder(job, timeout=120)
        assert record["status"] == "failed", record
        assert record["error"].startswith("the job did not become ready within 3 s"), record
        assert time.monotonic() - started < 60
        log = server.api("GET", f"/deploy/{record['id']}/build-logs").json()["logs"]
        assert "loading a model that never finishes loading" in log
        assert server.api("GET", "/job").json() == []
        replicas = server.home / "targets" / "local" / "replicas"
        assert list(replicas.glob("*.json")) == []  # its process was stopped
