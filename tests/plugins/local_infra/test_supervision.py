"""Crashed replicas are restarted with backoff, on the same port, until they crash too often."""

from __future__ import annotations

import os
import signal
import socket

import pytest

from racetrack_core.infrastructure import ReplicaStatus


def test_a_killed_replica_is_restarted_on_the_same_port(jobs):
    driver = jobs.driver()
    spec = jobs.spec()
    url = jobs.started(driver, spec)
    first_pid = jobs.get(url, "/pid")["pid"]

    os.kill(first_pid, signal.SIGKILL)

    jobs.wait_until(
        lambda: [(s.status, s.restarts) for s in driver.replicas()] == [(ReplicaStatus.RUNNING, 1)],
        "the replica to run again",
    )
    [state] = driver.replicas()
    assert state.replica.url == url
    assert jobs.answers(url)
    assert jobs.get(url, "/pid")["pid"] != first_pid
    assert "was killed by SIGKILL (exit code -9); restarting it in 0.05 s" in driver.logs(
        "hello", "1.0.0"
    )


def test_a_replica_that_keeps_crashing_ends_in_error_with_the_reason(jobs):
    driver = jobs.driver()  # crash_limit 3, backoff 0.05 s then 0.1 s
    spec = jobs.spec(env={"CRASH": "1"})
    driver.prepare(spec, jobs.build_log.append)
    replica = driver.start(spec)

    jobs.wait_until(
        lambda: driver.replicas()[0].status is ReplicaStatus.ERROR, "the driver to give up"
    )

    [state] = driver.replicas()
    assert state.replica.id == replica.id
    assert state.restarts == 2
    assert state.error is not None
    assert "crashed 3 times within 60 s and is no longer restarted" in state.error
    # The first line is what a deployment's error shows: it must carry the cause (D12).
    reason = state.error.splitlines()[0]
    assert "The last time, it exited with code 3 after printing: boom: crashing on" in reason
    assert driver.logs("hello", "1.0.0").count("boom: crashing on purpose") == 3
    assert list((jobs.home / "replicas").iterdir()) == []  # no pid file for a dead process

    driver.stop(replica)
    assert driver.replicas() == []


@pytest.mark.slow
def test_a_restart_moves_to_another_port_when_its_own_is_taken(jobs):
    driver = jobs.driver(restart_backoff_seconds=0.5)
    url = jobs.started(driver, jobs.spec())
    port = int(url.rsplit(":", 1)[1])

    os.kill(jobs.get(url, "/pid")["pid"], signal.SIGKILL)
    jobs.wait_until(lambda: "restarting it in" in driver.logs("hello", "1.0.0"), "the crash")
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        jobs.wait_until(
            lambda: (
                [(s.status, s.restarts) for s in driver.replicas()] == [(ReplicaStatus.RUNNING, 1)]
            ),
            "the restart",
        )
        [state] = driver.replicas()

    assert state.replica.url != url
    assert jobs.answers(state.replica.url)
    assert f"port {port} is taken" in driver.logs("hello", "1.0.0")
