"""Faults: Lifecycle killed in the middle of a deployment, then started again (issue 15).

A deployment is run by the Lifecycle process that admitted it. When that process dies, the
deployment can never finish; it used to stay ``in_progress`` for ever, and every later deploy
of its version was refused with 409. Now the restarted (or any other) Lifecycle fails it with a
clear error once its lease has gone without a heartbeat for ``lease_ttl``
(``racetrack_core/lifecycle/leases.py``), and the version can be deployed again.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from racetrack_core.testing.server import QUICK_ENV, RacetrackServer
from tests.faults.conftest import kill_processes_under

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SLOW_START = """
import time


class JobEntrypoint:
    def __init__(self) -> None:
        time.sleep(120)  # stays "waiting for live and ready" while Lifecycle is killed

    def perform(self) -> bool:
        return True
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RacetrackServer]:
    env = {**QUICK_ENV, "RACETRACK_LEASE_TTL": "3"}
    home = tmp_path / "racetrack-home"
    with RacetrackServer(home, env=env) as running:
        yield running
    kill_processes_under(home)  # the jobs that the killed server left running


def test_a_deployment_whose_lifecycle_was_killed_ends_failed(
    server: RacetrackServer, tmp_path: Path
) -> None:
    job = tmp_path / "job"
    job.mkdir()
    (job / "entrypoint.py").write_text(SLOW_START)
    (job / "job.yaml").write_text(
        textwrap.dedent(
            """\
            name: slow-start
            version: 0.0.1
            owner_email: owner@example.com
            jobtype: python3:latest
            jobtype_extra:
              entrypoint_path: entrypoint.py
            """
        )
    )
    from racetrack_core.manifest import load_manifest
    from racetrack_core.source import pack_build_context

    server.login()
    body = {"manifest": load_manifest(job).data, "build_context": pack_build_context(job)}
    answer = server.api("POST", "/deploy", json=body)
    assert answer.status_code == 200, answer.text
    deployment_id = answer.json()["id"]
    deadline = time.monotonic() + 120
    while server.api("GET", f"/deploy/{deployment_id}").json()["phase"] != (
        "waiting for live and ready"
    ):
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.2)

    assert server.process is not None
    server.process.kill()  # no clean-up of any kind: a crash, an OOM kill, a lost machine
    server.process.wait()
    server.start()
    server.login()

    deadline = time.monotonic() + 30
    while (record := server.api("GET", f"/deploy/{deployment_id}").json())["status"] == (
        "in_progress"
    ):
        assert time.monotonic() < deadline, "the deployment stayed in progress"
        time.sleep(0.3)
    assert record["status"] == "failed", record
    assert record["error"].startswith("the Lifecycle replica running this deployment (")
    assert record["error"].endswith(
        "stopped before it finished (no heartbeat for 3 s, at phase 'waiting for live and "
        "ready'); deploy again"
    )
    # Not 409: the version can be deployed again (this time with code that starts at once).
    (job / "entrypoint.py").write_text(SLOW_START.replace("time.sleep(120)", "pass"))
    again = server.deploy({**body, "build_context": pack_build_context(job)}, timeout=120)
    assert again["status"] == "done", again
