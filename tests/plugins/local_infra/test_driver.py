"""Starting, calling, stopping, retiring and deleting replicas: real processes on 127.0.0.1."""

from __future__ import annotations

import os
import time

import pytest

from racetrack_core.errors import RacetrackError
from racetrack_core.infrastructure import (
    DeployError,
    InfrastructureDriver,
    ReplicaStatus,
    TargetContext,
)
from racetrack_plugins.local_infra import LocalDriver


def pid_of(jobs, url: str) -> int:
    return int(jobs.get(url, "/pid")["pid"])


def alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}") and "Z" not in _state(pid)


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_the_plugin_registers_the_local_target(racetrack_plugin_manager, tmp_path):
    target = racetrack_plugin_manager.infrastructure_targets.get("local")
    assert target.plugin == "local"
    assert "supervised processes" in target.description
    driver = target.driver(TargetContext(tmp_path))
    try:
        assert isinstance(driver, LocalDriver)
        assert isinstance(driver, InfrastructureDriver)
    finally:
        driver.close()


def test_a_started_replica_answers_on_loopback(jobs):
    driver = jobs.driver()
    spec = jobs.spec(timestamp=1_700_000_123)
    driver.prepare(spec, jobs.build_log.append)

    replica = driver.start(spec)

    assert replica.url.startswith("http://127.0.0.1:")
    assert (replica.name, replica.version, replica.deployment_timestamp) == (
        "hello",
        "1.0.0",
        1_700_000_123,
    )
    jobs.wait_until(lambda: jobs.answers(replica.url), "the replica to answer")
    assert jobs.get(replica.url, "/live") == {"live": True, "deployment_timestamp": 1_700_000_123}
    [state] = driver.replicas()
    assert (state.replica, state.status, state.restarts) == (replica, ReplicaStatus.RUNNING, 0)
    pid_file = jobs.home / "replicas" / f"{replica.id}.json"
    assert pid_file.stat().st_mode & 0o777 == 0o600


def test_a_job_gets_a_minimal_environment(jobs, monkeypatch):
    monkeypatch.setenv("SERVER_ONLY_SECRET", "not for jobs")
    driver = jobs.driver()
    url = jobs.started(driver, jobs.spec(env={"GREETING": "hi"}))

    names = set(jobs.get(url, "/env"))

    assert {"PATH", "HOME", "JOB_PORT", "JOB_NAME", "GREETING"} <= names
    assert "SERVER_ONLY_SECRET" not in names


def test_starting_without_prepare_says_so(jobs):
    driver = jobs.driver()
    with pytest.raises(DeployError, match="is not built: prepare the job before starting it"):
        driver.start(jobs.spec(manifest={"variant": "never-built"}))


def test_stop_ends_the_process_and_forgets_the_replica(jobs):
    driver = jobs.driver()
    spec = jobs.spec()
    driver.prepare(spec, jobs.build_log.append)
    replica = driver.start(spec)
    jobs.wait_until(lambda: jobs.answers(replica.url), "the replica to answer")
    pid = pid_of(jobs, replica.url)

    driver.stop(replica)
    driver.stop(replica)  # a second stop does nothing

    assert not alive(pid)
    assert driver.replicas() == []
    assert list((jobs.home / "replicas").iterdir()) == []
    assert "stopping hello-1.0.0-" in driver.logs("hello", "1.0.0")


@pytest.mark.slow
def test_stop_kills_a_job_that_ignores_sigterm_after_the_grace_period(jobs):
    driver = jobs.driver(stop_grace_seconds=0.3)
    spec = jobs.spec(env={"IGNORE_TERM": "1"})
    driver.prepare(spec, jobs.build_log.append)
    replica = driver.start(spec)
    jobs.wait_until(lambda: jobs.answers(replica.url), "the replica to answer")
    pid = pid_of(jobs, replica.url)

    began = time.monotonic()
    driver.stop(replica)

    assert 0.3 <= time.monotonic() - began < 2
    assert not alive(pid)


def test_two_replicas_of_one_version_run_side_by_side_then_the_old_one_retires(jobs):
    driver = jobs.driver(drain_seconds=0.2)
    spec = jobs.spec()
    driver.prepare(spec, jobs.build_log.append)
    old = driver.start(spec)
    new = driver.start(spec)
    assert old.id != new.id
    assert old.url != new.url
    for replica in (old, new):
        jobs.wait_until(lambda url=replica.url: jobs.answers(url), "both replicas to answer")
    old_pid = pid_of(jobs, old.url)

    began = time.monotonic()
    driver.retire(old)

    assert time.monotonic() - began >= 0.2
    assert not alive(old_pid)
    assert jobs.answers(new.url)
    assert [state.replica.id for state in driver.replicas()] == [new.id]


def test_delete_stops_every_replica_of_the_version_and_removes_its_files(jobs):
    driver = jobs.driver()
    first, redeployed = jobs.spec(timestamp=1), jobs.spec(timestamp=2)
    kept = jobs.spec(version="2.0.0")
    pids = [pid_of(jobs, jobs.started(driver, spec)) for spec in (first, redeployed)]
    kept_url = jobs.started(driver, kept)
    assert "[racetrack]" in (first.state_dir / "job.log").read_text()
    assert driver.logs("hello", "1.0.0") == (redeployed.state_dir / "job.log").read_text().strip()

    driver.delete("hello", "1.0.0")

    assert not any(alive(pid) for pid in pids)
    assert not first.state_dir.exists()
    assert not redeployed.state_dir.exists()
    assert [state.replica.version for state in driver.replicas()] == ["2.0.0"]
    assert len(list((jobs.home / "replicas").iterdir())) == 1
    assert not (jobs.home / "versions" / "hello" / "1.0.0.json").exists()
    assert driver.logs("hello", "1.0.0") == ""
    assert jobs.answers(kept_url)


def test_close_stops_every_replica_and_refuses_new_ones(jobs):
    driver = jobs.driver()
    spec = jobs.spec()
    pid = pid_of(jobs, jobs.started(driver, spec))

    driver.close()

    assert not alive(pid)
    with pytest.raises(DeployError, match="shutting down"):
        driver.start(spec)


def test_a_misspelt_setting_is_refused_with_the_known_ones(tmp_path):
    with pytest.raises(RacetrackError, match=r"unknown setting 'drain'\. Known: drain_seconds"):
        LocalDriver(TargetContext(tmp_path, {"drain": 1}))
    with pytest.raises(RacetrackError, match="'crash_limit' is 'five'"):
        LocalDriver(TargetContext(tmp_path, {"crash_limit": "five"}))
