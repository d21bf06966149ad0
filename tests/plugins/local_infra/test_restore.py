"""After a server is killed: its replicas show up as orphans, and restore brings them back.

A real server restart is simulated by a helper process that starts a replica with its own
LocalDriver and is then SIGKILLed, so that nothing is closed or cleaned up.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from racetrack_core.infrastructure import Replica, ReplicaStatus

HELPER = textwrap.dedent(
    """
    import json, runpy, sys, time
    from dataclasses import asdict
    from pathlib import Path

    from racetrack_core.infrastructure import TargetContext
    from racetrack_plugins.local_infra import LocalDriver

    conftest = runpy.run_path(sys.argv[1])
    root, timestamp = Path(sys.argv[2]), int(sys.argv[3])
    spec = conftest["make_spec"](conftest["ScriptRecipe"](), root, timestamp=timestamp)
    driver = LocalDriver(TargetContext(root / "home", conftest["FAST_SETTINGS"]))
    driver.prepare(spec, lambda line: None)
    print(json.dumps(asdict(driver.start(spec))), flush=True)
    time.sleep(60)
    """
)
CONFTEST = Path(__file__).with_name("conftest.py")


def abandoned_replica(jobs, timestamp: int = 1_700_000_000) -> Replica:
    """Start a replica from a driver in another process, then SIGKILL that process."""
    command = [sys.executable, "-c", HELPER, str(CONFTEST), str(jobs.root), str(timestamp)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        replica = Replica(**json.loads(server.stdout.readline()))
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
        if server.stdout is not None:
            server.stdout.close()
    jobs.wait_until(lambda: jobs.answers(replica.url), "the abandoned replica to answer")
    return replica


@pytest.mark.slow
def test_a_replica_left_by_a_killed_server_is_an_orphan_and_restore_adopts_it(jobs):
    replica = abandoned_replica(jobs)
    pid = jobs.get(replica.url, "/pid")["pid"]
    driver = jobs.driver()

    [orphan] = driver.replicas()
    assert (orphan.replica, orphan.status) == (replica, ReplicaStatus.ORPHANED)

    restored = driver.restore(jobs.spec(), replica)

    assert restored == replica
    assert jobs.get(replica.url, "/pid")["pid"] == pid  # the same process kept serving
    [state] = driver.replicas()
    assert (state.replica, state.status) == (replica, ReplicaStatus.RUNNING)
    assert "adopted" in driver.logs("hello", "1.0.0")

    os.kill(pid, signal.SIGKILL)  # an adopted process is supervised like any other
    jobs.wait_until(
        lambda: [(s.status, s.restarts) for s in driver.replicas()] == [(ReplicaStatus.RUNNING, 1)],
        "the adopted replica to be restarted",
    )
    assert jobs.get(replica.url, "/pid")["pid"] != pid
    assert "exit code unknown" in driver.logs("hello", "1.0.0")


@pytest.mark.slow
def test_an_orphan_of_another_deployment_is_replaced_on_restore(jobs):
    replica = abandoned_replica(jobs, timestamp=1_700_000_000)
    old_pid = jobs.get(replica.url, "/pid")["pid"]
    driver = jobs.driver()

    restored = driver.restore(jobs.spec(timestamp=1_700_000_999), replica)

    assert restored.id == replica.id
    jobs.wait_until(lambda: jobs.answers(restored.url), "the fresh replica to answer")
    assert jobs.get(restored.url, "/live")["deployment_timestamp"] == 1_700_000_999
    assert jobs.get(restored.url, "/pid")["pid"] != old_pid


def test_restore_rebuilds_a_missing_environment_and_keeps_the_port(jobs):
    first = jobs.driver()
    spec = jobs.spec()
    url = jobs.started(first, spec)
    [state] = first.replicas()
    first.close()  # the server stopped, and someone cleaned the environments folder
    shutil.rmtree(jobs.home / "envs")

    second = jobs.driver()
    restored = second.restore(spec, state.replica)

    assert restored.url == url
    assert restored.id == state.replica.id
    jobs.wait_until(lambda: jobs.answers(url), "the restored replica to answer")
    assert jobs.recipe.builds == 2
    assert second.restore(spec, state.replica) == restored  # restoring again changes nothing


@pytest.mark.slow
def test_delete_also_stops_orphans(jobs):
    replica = abandoned_replica(jobs)
    pid = jobs.get(replica.url, "/pid")["pid"]
    driver = jobs.driver()
    assert [s.status for s in driver.replicas()] == [ReplicaStatus.ORPHANED]

    driver.delete("hello", "1.0.0")

    jobs.wait_until(lambda: _gone(pid), "the orphan to exit")
    assert driver.replicas() == []
    assert not jobs.spec().state_dir.exists()
    assert list((jobs.home / "replicas").iterdir()) == []


def _gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie waiting for its new parent to reap it counts)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in {"Z", "X"}
    except OSError:
        return True
