"""The Docker target on the real engine: build, run, loopback only, secrets, crashes, adoption."""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from racetrack_core.images import LABEL_JOB, LABEL_VERSION
from racetrack_core.infrastructure import JobSpec, Replica, ReplicaStatus
from racetrack_plugins.docker_infra.containers import (
    LABEL_HOME,
    LABEL_PORT,
    LABEL_REPLICA,
    home_digest,
)
from tests.plugins.docker_infra.conftest import DOCKER_CLI, Jobs

SECRET = "zebra-s3cr3t-5150"


@pytest.fixture(scope="module")
def primer(jobs: Jobs) -> Replica:
    """python-primer built with a build secret and started once for the module."""
    driver = jobs.driver()
    spec = jobs.spec(build_secrets={"BUILD_TOKEN": SECRET})
    driver.prepare(spec, jobs.build_log.append)
    replica = driver.start(spec)
    jobs.wait_until(lambda: jobs.live(replica.url), f"{replica.url}/live")
    return replica


def container_of(jobs: Jobs, replica: Replica) -> Any:
    [container] = jobs.client.containers.list(filters={"name": replica.id})
    return container


def test_the_job_serves_its_deployment_on_loopback(jobs: Jobs, primer: Replica) -> None:
    assert primer.url.startswith("http://127.0.0.1:")
    assert jobs.live(primer.url) == {"live": True, "deployment_timestamp": 100}
    answer = jobs.http.post(primer.url + "/api/v1/perform", json={"number": 7907})
    assert answer.status_code == 200, answer.text
    assert answer.json() is True
    assert any(
        line.startswith("building image racetrack-test-job/primer") for line in jobs.build_log
    )
    assert any(line.startswith("#") and "DONE" in line for line in jobs.build_log)  # BuildKit


def test_the_port_is_held_in_the_shared_record(jobs: Jobs, primer: Replica) -> None:
    port = int(primer.url.rsplit(":", 1)[1])
    assert port in jobs.ports.taken()
    assert jobs.ports.claim(port, primer.id, "primer", "0.0.1", "d1")  # its own
    assert not jobs.ports.claim(port, "rt-someone-else", "other", "1.0.0", "x")


def test_follow_logs_streams_and_stops_when_asked(jobs: Jobs, primer: Replica) -> None:
    stop = threading.Event()
    lines = jobs.drivers[0].follow_logs("primer", "0.0.1", tail=5, stop=stop)
    first = next(lines)
    assert first
    stop.set()
    started = time.monotonic()
    list(lines)  # ends once the stop event is seen
    assert time.monotonic() - started < 2


def test_the_port_is_bound_to_127_0_0_1_only(primer: Replica) -> None:
    """The job's listening socket, read from the kernel: nothing on 0.0.0.0 or ::."""
    port = int(primer.url.rsplit(":", 1)[1])
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:
                listening.append(address)
    assert listening == ["0100007F"]  # 127.0.0.1, little-endian, and no IPv6 socket


def test_a_build_secret_is_absent_from_history_inspect_and_save(
    jobs: Jobs, primer: Replica, tmp_path: Path
) -> None:
    tag = container_of(jobs, primer).image.tags[0]
    history = subprocess.run(
        [str(DOCKER_CLI), "history", "--no-trunc", tag], capture_output=True, check=True
    )
    inspect = subprocess.run([str(DOCKER_CLI), "inspect", tag], capture_output=True, check=True)
    saved = tmp_path / "image.tar"
    subprocess.run([str(DOCKER_CLI), "save", "-o", str(saved), tag], check=True)
    assert b"BUILD_TOKEN" not in history.stdout + inspect.stdout
    assert SECRET.encode() not in history.stdout + inspect.stdout
    extracted = tmp_path / "layers"
    extracted.mkdir()
    subprocess.run(["tar", "-xf", str(saved), "-C", str(extracted)], check=True)
    for path in extracted.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            if path.name == "layer.tar":
                listing = subprocess.run(
                    ["tar", "-xOf", str(path)], capture_output=True, check=False
                ).stdout
                content += listing
            assert SECRET.encode() not in content, path
    assert SECRET not in "\n".join(jobs.build_log)


def test_labels_find_the_image_and_container(jobs: Jobs, primer: Replica) -> None:
    container = container_of(jobs, primer)
    for labels in (container.labels, container.image.labels):
        assert labels["racetrack.job"] == "primer"
        assert labels["racetrack.version"] == "0.0.1"
        assert labels["racetrack.deployment"] == "d1"
    assert container.attrs["HostConfig"]["NetworkMode"] == "host"
    assert container.attrs["HostConfig"]["Memory"] == 512 * 1024**2


def test_a_killed_container_comes_back_and_its_status_says_so(jobs: Jobs, primer: Replica) -> None:
    driver = jobs.drivers[0]
    container = container_of(jobs, primer)
    os.kill(container.attrs["State"]["Pid"], signal.SIGKILL)

    def restarted() -> bool:
        [state] = [s for s in driver.replicas() if s.replica.id == primer.id]
        return state.restarts >= 1 and state.status == ReplicaStatus.RUNNING

    jobs.wait_until(restarted, "the container to be restarted")
    jobs.wait_until(lambda: jobs.live(primer.url), "the job to answer again")
    assert "restarted" not in str(driver.replicas())  # running: no error text


def test_a_restarted_server_adopts_the_running_container(jobs: Jobs, primer: Replica) -> None:
    before = container_of(jobs, primer).id
    fresh = jobs.driver()
    assert [s.status for s in fresh.replicas() if s.replica.id == primer.id] == [
        ReplicaStatus.ORPHANED
    ]
    adopted = fresh.restore(jobs.spec(), primer)
    assert adopted == primer
    assert container_of(jobs, primer).id == before
    assert jobs.live(primer.url)["deployment_timestamp"] == 100
    assert [s.status for s in fresh.replicas() if s.replica.id == primer.id] == [
        ReplicaStatus.RUNNING
    ]
    assert "Uvicorn running on http://127.0.0.1" in fresh.logs("primer", "0.0.1", tail=50)


def test_a_crash_loop_is_an_error_with_the_exit_code_and_last_lines(jobs: Jobs) -> None:
    driver = jobs.driver(crash_limit=2)
    # A job whose code fails at import (a missing entrypoint file is refused before it runs).
    workspace = jobs.root / "crasher"
    workspace.mkdir()
    (workspace / "entrypoint.py").write_text("import no_such_module_of_the_crasher\n")
    spec = jobs.spec(name="crasher", workspace=workspace, deployment_id="c1")
    driver.prepare(spec, jobs.build_log.append)
    replica = driver.start(spec)

    def failed() -> Any:
        states = [s for s in driver.replicas() if s.replica.id == replica.id]
        return states and states[0].status == ReplicaStatus.ERROR and states[0]

    state = jobs.wait_until(failed, "the crash loop to be reported", timeout=60)
    assert "exit code" in str(state.error)
    assert "no_such_module_of_the_crasher" in str(state.error)
    driver.delete("crasher", "0.0.1")
    assert not [s for s in driver.replicas() if s.replica.name == "crasher"]
    assert not jobs.client.images.list(filters={"label": "racetrack.job=crasher"})


def test_an_unchanged_job_rebuilds_from_the_layer_cache(jobs: Jobs) -> None:
    driver = jobs.drivers[0]
    log: list[str] = []
    driver.prepare(jobs.spec(deployment_id="d2"), log.append)
    assert any(line.endswith("CACHED") for line in log), log
    assert not any("Successfully installed" in line for line in log)


def test_two_replicas_are_two_containers_that_both_serve(jobs: Jobs) -> None:
    driver = jobs.driver()
    spec = jobs.spec(
        version="0.0.2",
        deployment_id="r2",
        manifest={"replicas": 2, "jobtype_extra": {"entrypoint_path": "entrypoint.py"}},
    )
    driver.prepare(spec, jobs.build_log.append)
    replica = driver.start(spec)
    assert len(replica.urls) == 2
    assert len(set(replica.urls)) == 2
    names = set()
    for url in replica.urls:
        jobs.wait_until(functools.partial(jobs.live, url), f"{url}/live")
        names.add(jobs.http.get(url + "/health").json()["replica"])
        answer = jobs.http.post(url + "/api/v1/perform", json={"number": 7907})
        assert answer.json() is True
    assert names == {f"{replica.id}-0", f"{replica.id}-1"}
    [state] = [s for s in driver.replicas() if s.replica.id == replica.id]
    assert state.replica == replica
    assert state.status == ReplicaStatus.RUNNING
    assert {int(url.rsplit(":", 1)[1]) for url in replica.urls} <= jobs.ports.taken()
    driver.stop(replica)
    assert not {int(url.rsplit(":", 1)[1]) for url in replica.urls} & jobs.ports.taken()
    assert not jobs.client.containers.list(
        all=True, filters={"label": f"racetrack.replica={replica.id}"}
    )


def test_an_instance_stopped_or_removed_by_hand_is_lost_and_restore_brings_back_only_it(
    jobs: Jobs,
) -> None:
    """``docker kill`` leaves a container stopped (its restart policy does not apply) and
    ``docker rm -f`` leaves none: each such instance is LOST, with its name, and ``restore``
    starts it again on its own port, leaving the other instance's container alone."""
    driver = jobs.driver()
    spec = jobs.spec(
        version="0.0.5",
        deployment_id="l5",
        manifest={"replicas": 2, "jobtype_extra": {"entrypoint_path": "entrypoint.py"}},
    )
    driver.prepare(spec, jobs.build_log.append)
    replica = driver.start(spec)
    for url in replica.urls:
        jobs.wait_until(functools.partial(jobs.live, url), f"{url}/live")

    def instance(number: int) -> Any:
        labels = [f"racetrack.replica={replica.id}", f"racetrack.instance={number}"]
        found = jobs.client.containers.list(all=True, filters={"label": labels})
        return found[0] if found else None

    def state() -> Any:
        [found] = [s for s in driver.replicas() if s.replica.id == replica.id]
        return found

    kept = instance(0)
    for stop_by_hand in ("kill", "remove"):
        container = instance(1)
        if stop_by_hand == "kill":
            container.kill()
        else:
            container.remove(force=True)
        lost = jobs.wait_until(
            lambda: state().instances[1].status == ReplicaStatus.LOST and state(), "LOST"
        )
        assert lost.replica == replica
        assert lost.status == ReplicaStatus.STARTING  # one instance still serves
        assert lost.instances[0].status == ReplicaStatus.RUNNING
        assert lost.instances[1].name == f"{replica.id}-1"
        assert lost.instances[1].url == replica.urls[1]

        assert driver.restore(spec, replica) == replica  # the same ports
        jobs.wait_until(functools.partial(jobs.live, replica.urls[1]), "the instance back")
        assert [i.status for i in state().instances] == [ReplicaStatus.RUNNING] * 2
        assert instance(0).id == kept.id  # the other instance was left alone
        if stop_by_hand == "kill":
            assert instance(1).id == container.id  # the same container, started again
    ports = {int(url.rsplit(":", 1)[1]) for url in replica.urls}
    assert ports <= jobs.ports.taken()
    driver.delete("primer", "0.0.5")
    assert not ports & jobs.ports.taken()


def test_system_dependencies_are_installed_into_the_image(jobs: Jobs) -> None:
    driver = jobs.driver()
    spec = jobs.spec(
        name="withdeps",
        deployment_id="s1",
        manifest={
            "system_dependencies": ["jq"],
            "jobtype_extra": {"entrypoint_path": "entrypoint.py"},
        },
    )
    driver.prepare(spec, jobs.build_log.append)
    tag = driver.builder.tag_of(spec)
    done = jobs.client.containers.run(tag, ["jq", "--version"], remove=True, network_mode="host")
    assert bytes(done).decode().startswith("jq-")
    driver.delete("withdeps", "0.0.1")


def test_a_redeploy_keeps_the_previous_image_and_drops_older_ones(jobs: Jobs) -> None:
    driver = jobs.driver()
    specs = [
        jobs.spec(version="0.0.9", deployment_id=f"k{n}", deployment_timestamp=200 + n)
        for n in range(3)
    ]
    for spec in specs:
        driver.prepare(spec, lambda line: None)
    previous = driver.start(specs[1])
    driver.start(specs[2])
    driver.retire(previous)

    def tag_exists(spec: JobSpec) -> bool:
        return bool(jobs.client.images.list(name=driver.builder.tag_of(spec)))

    assert [tag_exists(spec) for spec in specs] == [False, True, True]
    driver.delete("primer", "0.0.9")
    assert not [tag_exists(spec) for spec in specs if tag_exists(spec)]


def test_the_image_listens_where_job_host_says(jobs: Jobs, primer: Replica) -> None:
    """JOB_HOST moves the listening address (the Kubernetes target sets 0.0.0.0 in a pod);
    here another loopback address, so that nothing leaves the host."""
    image = container_of(jobs, primer).image
    with socket.socket() as probe:
        probe.bind(("127.0.0.2", 0))
        port = probe.getsockname()[1]
    other = jobs.client.containers.run(
        image.id,
        detach=True,
        network_mode="host",
        environment={
            "JOB_HOST": "127.0.0.2",
            "JOB_PORT": str(port),
            "JOB_DEPLOYMENT_TIMESTAMP": "7",
        },
        labels={LABEL_HOME: home_digest(jobs.home)},  # removed with the test's containers
    )
    try:
        found = jobs.wait_until(lambda: jobs.live(f"http://127.0.0.2:{port}"), "127.0.0.2/live")
        assert found == {"live": True, "deployment_timestamp": 7}
    finally:
        other.remove(force=True)


def test_a_delete_waits_for_a_removal_that_another_remover_started(jobs: Jobs) -> None:
    """A redeploy retires the old replica on a timer (or another Lifecycle removes it) while a
    delete removes the same containers. The engine refuses the second removal of a container
    ("removal ... is already in progress", 409): the container is going, so the delete waits
    for it instead of failing with a 500. A container with many files is slow enough to remove
    that the delete always meets the removal in progress."""
    driver = jobs.driver()
    labels = {
        LABEL_HOME: home_digest(jobs.home),
        LABEL_JOB: "slow",
        LABEL_VERSION: "0.0.1",
        LABEL_REPLICA: "rt-slow-0.0.1-0000",
        LABEL_PORT: "1",
    }
    script = "mkdir /tmp/many && cd /tmp/many && seq 1 40000 | xargs touch && touch /tmp/done"
    container = jobs.client.containers.run(
        jobs.base_image, ["sh", "-c", script + " && exec sleep 600"], labels=labels, detach=True
    )
    jobs.wait_until(
        lambda: container.exec_run(["test", "-e", "/tmp/done"]).exit_code == 0, "40000 files"
    )
    other = threading.Thread(target=jobs.client.api.remove_container, args=(container.id,),
                             kwargs={"force": True})  # fmt: skip
    other.start()
    time.sleep(0.05)
    driver.delete("slow", "0.0.1")
    other.join(timeout=60)
    assert not jobs.client.containers.list(all=True, filters={"id": container.id})


def test_listing_skips_containers_that_vanish_between_list_and_inspect(jobs: Jobs) -> None:
    """The engine lists a container, then answers 404 when it is inspected: it was removed
    meanwhile, or is still being created (listed before it can be inspected). With several
    Lifecycles deploying at once on one engine this happens on every listing for a while; the
    driver lists what it can inspect instead of failing the deployment that asked. Here each
    inspection of a churning container first removes it on the real engine and creates the
    next one, so that every listing meets one that vanished."""
    driver = jobs.driver()
    labels = {
        LABEL_HOME: home_digest(jobs.home),
        LABEL_JOB: "churn",
        LABEL_VERSION: "0.0.1",
        LABEL_PORT: "1",
    }

    def churning(n: int) -> Any:
        replica = {LABEL_REPLICA: f"rt-churn-0.0.1-{n:04d}"}
        return jobs.client.containers.create(jobs.base_image, ["true"], labels=labels | replica)

    current = [churning(0)]
    inspect = driver.client.api.inspect_container

    def vanishing_inspect(container_id: str) -> Any:
        if container_id == current[-1].id and len(current) < 4:
            current[-1].remove(force=True)
            current.append(churning(len(current)))
        return inspect(container_id)

    driver.client.api.inspect_container = vanishing_inspect
    try:
        listed = {state.replica.id for state in driver.replicas()}
        assert "rt-churn-0.0.1-0000" not in listed
    finally:
        driver.client.api.inspect_container = inspect
        current[-1].remove(force=True)
    assert len(current) >= 2, "the listing met no vanished container"
