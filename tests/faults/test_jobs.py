"""A job's process killed, and a job that never becomes ready: real job processes."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from racetrack_core.testing.server import RacetrackServer
from tests.faults.conftest import PRIMER_DIR, wait_for
from tests.faults.jobs import job_folder

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def replica_pid(server: RacetrackServer, name: str = "primer") -> int:
    """The pid of job ``name``'s latest version, from the local target's pid files."""
    job = server.api("GET", f"/job/{name}/latest").json()
    port = int(job["internal_name"].rsplit(":", 1)[1])
    for record in (server.home / "targets" / "local" / "replicas").glob("*.json"):
        data = json.loads(record.read_text())
        if data["port"] == port:
            pid: int = data["pid"]
            return pid
    raise AssertionError(f"no pid file for port {port}")


def restarts(job: dict[str, Any]) -> int:
    return sum(int(instance.get("restarts") or 0) for instance in job.get("instances") or [])


def test_a_killed_job_comes_back_and_its_status_says_so(
    make_server: Callable[..., RacetrackServer],
) -> None:
    server = make_server()
    server.start()
    server.login()
    assert server.deploy_folder(PRIMER_DIR)["status"] == "done"
    before = server.api("GET", "/job/primer/latest").json()
    assert before["status"] == "running", before

    pid = replica_pid(server)
    os.kill(pid, signal.SIGKILL)
    started = time.monotonic()
    wait_for(
        lambda: (
            server.call("primer", "latest", {"number": 7907}).status_code == 200
            and replica_pid(server) != pid
        ),
        60,
        "the killed job answers again",
    )
    back_after = time.monotonic() - started
    wait_for(
        lambda: restarts(server.api("GET", "/job/primer/latest").json()) > restarts(before),
        30,
        "the job's record counts the restart",
    )
    after = server.api("GET", "/job/primer/latest").json()
    print(f"killed job back after {back_after:.1f} s: {after['status']}, {after['instances']}")
    assert after["status"] == "running", after
    assert server.call("primer", "latest", {"number": 7907}).json() is True


def test_a_job_that_never_becomes_ready_fails_with_its_logs(
    make_server: Callable[..., RacetrackServer], tmp_path: Path
) -> None:
    server = make_server(RACETRACK_JOB_LIVE_TIMEOUT="8", RACETRACK_JOB_READY_TIMEOUT="8")
    server.start()
    server.login()
    stuck = job_folder(
        tmp_path / "stuck",
        "print('loading the model from /models/huge.bin', flush=True)\ntime.sleep(3600)",
    )
    started = time.monotonic()
    record = server.deploy_folder(stuck, timeout=120)
    took = time.monotonic() - started
    print(f"never-ready job: {record['status']} after {took:.1f} s: {record['error']}")
    assert record["status"] == "failed", record
    assert took < 60, took
    error = record["error"] or ""
    assert "ready" in error, error
    assert "loading the model from /models/huge.bin" in error, error
    assert server.call("primer", "latest", {"number": 7907}).status_code == 404
    log = server.api("GET", f"/deploy/{record['id']}/build-logs").json()["logs"]
    assert "loading the model from /models/huge.bin" in log
    assert server.api("GET", "/job").json() == []
    replicas = server.home / "targets" / "local" / "replicas"
    assert list(replicas.glob("*.json")) == []  # its process was stopped
