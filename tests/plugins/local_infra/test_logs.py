"""A job version's output: tail, follow, rotation, and no environment values written."""

from __future__ import annotations

import os
import signal

from racetrack_core.infrastructure import ReplicaStatus


def test_logs_hold_the_job_output_and_the_driver_notes(jobs):
    driver = jobs.driver()
    url = jobs.started(driver, jobs.spec())
    jobs.get(url, "/ready")
    jobs.wait_until(lambda: "request /ready" in driver.logs("hello", "1.0.0"), "the request line")

    everything = driver.logs("hello", "1.0.0")
    last_two = driver.logs("hello", "1.0.0", tail=2)

    assert "[racetrack] " in everything
    assert "starting hello-1.0.0-" in everything
    assert f"serving on 127.0.0.1:{url.rsplit(':', 1)[1]}" in everything
    assert last_two.splitlines() == everything.splitlines()[-2:]
    assert driver.logs("hello", "9.9.9") == ""
    assert list(driver.follow_logs("hello", "9.9.9")) == []


def test_follow_logs_yields_the_tail_then_new_lines(jobs):
    driver = jobs.driver()
    url = jobs.started(driver, jobs.spec())
    lines = driver.follow_logs("hello", "1.0.0", tail=1)
    try:
        assert "request /live" in next(lines)  # the last line so far: the readiness probe
        jobs.get(url, "/pid")
        assert next(lines) == "request /pid"
        jobs.get(url, "/ready")
        assert next(lines) == "request /ready"
    finally:
        lines.close()


def test_a_log_past_its_cap_is_rotated_and_still_readable(jobs):
    driver = jobs.driver(log_max_bytes=300)
    url = jobs.started(driver, jobs.spec())
    for _ in range(20):
        jobs.get(url, "/ready")

    log_dir = jobs.spec().state_dir
    jobs.wait_until(lambda: (log_dir / "job.log.1").exists(), "the log to rotate")
    jobs.wait_until(lambda: (log_dir / "job.log").stat().st_size <= 300, "the log to be cut")
    jobs.get(url, "/pid")

    jobs.wait_until(
        lambda: driver.logs("hello", "1.0.0", tail=1) == "request /pid", "the newest line"
    )


def test_the_driver_writes_no_environment_value_anywhere(jobs):
    secret = "s3cr3t-value-8f7a2c"
    driver = jobs.driver()
    spec = jobs.spec(env={"API_TOKEN": secret})
    url = jobs.started(driver, spec)
    os.kill(jobs.get(url, "/pid")["pid"], signal.SIGKILL)
    jobs.wait_until(lambda: driver.replicas()[0].restarts == 1, "a restart")
    jobs.wait_until(lambda: driver.replicas()[0].status is ReplicaStatus.RUNNING, "it to serve")
    for state in driver.replicas():
        driver.stop(state.replica)

    written = [path for path in jobs.root.rglob("*") if path.is_file()]
    assert any(path.name == "job.log" for path in written)
    assert all(secret.encode() not in path.read_bytes() for path in written)
    index_files = list((jobs.home / "versions").rglob("*.json"))
    assert index_files
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in index_files)
