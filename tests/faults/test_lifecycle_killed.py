"""Lifecycle killed (SIGKILL by pid) in the middle of a deployment, with a Pub of its own.

``racetrack up`` runs Lifecycle (and a Pub); a second Pub runs alone (``racetrack serve pub``)
against the same Lifecycle, as a replica behind a load balancer would. While Lifecycle is dead
the calls through that Pub are recorded; after the restart the interrupted deployment must
end (done or failed with a sentence), never stay in progress, and the job must answer.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from racetrack_core.testing.server import AUTH_HEADER, RacetrackServer
from tests.faults.conftest import PRIMER_DIR, StandalonePub, wait_for
from tests.faults.jobs import job_folder

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def call(pub: str, token: str, version: str = "latest") -> httpx.Response:
    return httpx.post(
        f"{pub}/job/primer/{version}/api/v1/perform",
        json={"number": 7907},
        headers={AUTH_HEADER: token},
        timeout=30,
    )


def test_lifecycle_killed_during_a_deployment(
    make_server: Callable[..., RacetrackServer],
    standalone_pub: Callable[[RacetrackServer], StandalonePub],
    tmp_path: Path,
) -> None:
    server = make_server(RACETRACK_LEASE_TTL="6")
    server.start()
    server.login()
    assert server.deploy_folder(PRIMER_DIR)["status"] == "done"
    pub = standalone_pub(server).url
    assert call(pub, server.token, "0.0.1").json() is True  # Pub keeps Lifecycle's answer

    slow = job_folder(tmp_path / "slow", "time.sleep(6)", version="0.0.2")
    answer = server.api("POST", "/deploy", json=deploy_body(slow))
    assert answer.status_code == 200, answer.text
    deployment_id = answer.json()["id"]
    wait_for(
        lambda: current_phase(server, deployment_id) == "waiting for live and ready",
        60,
        "the deployment waits for its new replica",
    )
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()

    statuses: dict[int, int] = {}
    sentences: set[str] = set()
    end = time.monotonic() + 5
    while time.monotonic() < end:
        answer = call(pub, server.token, "0.0.1")
        statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
        if answer.status_code != 200:
            sentences.add(answer.json()["error"])
        time.sleep(0.05)
    print(f"calls through Pub while Lifecycle is dead: {statuses}, {sentences}")
    # The version serving before the deployment goes on serving while its Lifecycle is dead.
    assert set(statuses) == {200}, (statuses, sentences)

    server.start()
    server.login()
    wait_for(
        lambda: server.api("GET", f"/deploy/{deployment_id}").json()["status"] != "in_progress",
        90,
        "the interrupted deployment ends",
    )
    record = server.api("GET", f"/deploy/{deployment_id}").json()
    print(f"the interrupted deployment after the restart: {record['status']}: {record['error']}")
    assert record["status"] == "failed", record
    assert record["error"].startswith("the Lifecycle replica running this deployment (")
    assert record["error"].endswith(
        "stopped before it finished (no heartbeat for 6 s, at phase 'waiting for live and "
        "ready'); deploy again"
    )
    wait_for(lambda: call(server.pub, server.token).status_code == 200, 60, "primer answers")
    wait_for(lambda: call(pub, server.token).status_code == 200, 30, "the other Pub recovers")
    # Not 409: the version can be deployed again (this time with code that starts at once).
    quick = job_folder(tmp_path / "quick", "pass", version="0.0.2")
    assert server.deploy(deploy_body(quick), timeout=120)["status"] == "done"


def deploy_body(folder: Path) -> dict[str, object]:
    from racetrack_core.manifest import load_manifest
    from racetrack_core.source import pack_build_context

    manifest = load_manifest(folder / "job.yaml").data
    return {"manifest": manifest, "build_context": pack_build_context(folder)}


def current_phase(server: RacetrackServer, deployment_id: str) -> str:
    record = server.api("GET", f"/deploy/{deployment_id}").json()
    phases = record.get("phases") or [{}]
    phase: str = phases[-1].get("phase", "")
    return phase


def test_calls_through_pub_while_lifecycle_is_dead(
    make_server: Callable[..., RacetrackServer],
    standalone_pub: Callable[[RacetrackServer], StandalonePub],
) -> None:
    server = make_server(RACETRACK_PUB_AUTH_STALE_TTL="20")
    server.start()
    server.login()
    assert server.deploy_folder(PRIMER_DIR)["status"] == "done"
    pub = standalone_pub(server).url
    assert call(pub, server.token).json() is True  # checked: Pub keeps the answer

    assert server.process is not None
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    checked = [call(pub, server.token) for _ in range(20)]
    unchecked = call(pub, server.token, "0.0.1")
    print(
        "while Lifecycle is dead: a call Pub checked before answers "
        f"{sorted({a.status_code for a in checked})}; one it never checked answers "
        f"{unchecked.status_code} {unchecked.text}"
    )
    assert all(answer.status_code == 200 for answer in checked), checked[-1].text
    assert all(answer.json() is True for answer in checked)
    assert unchecked.status_code == 503, unchecked.text
    assert unchecked.json()["error"].startswith("Pub cannot check permissions: Lifecycle")

    time.sleep(21)  # past the stale answers' lifetime: Pub refuses rather than guess
    late = call(pub, server.token)
    assert late.status_code == 503, late.text
    assert late.json()["error"].startswith("Pub cannot check permissions: Lifecycle")

    server.start()
    wait_for(lambda: call(pub, server.token).status_code == 200, 30, "calls succeed again")
