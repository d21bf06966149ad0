"""Job containers as the engine knows them: their labels, ports and states.

Every job container carries labels naming the server home that runs it (``racetrack.home``,
a digest, so two servers on one engine never touch each other's jobs), the job, its version,
its deployment, its replica id, its port and deployment timestamp. The engine is the shared
record: any Lifecycle process on the host reads the same labels, so ports and orphans are
judged from what runs, not from one process's memory.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from racetrack_core.images import LABEL_DEPLOYMENT, LABEL_JOB, LABEL_TIMESTAMP, LABEL_VERSION
from racetrack_core.infrastructure import InstanceState, Replica, ReplicaState, ReplicaStatus

LABEL_HOME = "racetrack.home"
LABEL_REPLICA = "racetrack.replica"
LABEL_INSTANCE = "racetrack.instance"
LABEL_PORT = "racetrack.port"
PORT_RANGE = range(20000, 30000)
#: Why an instance whose container the engine no longer has is LOST.
GONE = "the container is gone (removed outside Racetrack)"


def home_digest(home: Path) -> str:
    """The value of ``racetrack.home`` for a target home folder."""
    return hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:16]


def labels_of(
    home: str, replica: Replica, deployment_id: str, port: int, instance: int
) -> dict[str, str]:
    return {
        LABEL_INSTANCE: str(instance),
        LABEL_HOME: home,
        LABEL_JOB: replica.name,
        LABEL_VERSION: replica.version,
        LABEL_DEPLOYMENT: deployment_id,
        LABEL_REPLICA: replica.id,
        LABEL_PORT: str(port),
        LABEL_TIMESTAMP: str(replica.deployment_timestamp),
    }


def replica_of(group: list[Any]) -> Replica:
    """The replica that a group of job containers (its instances) runs, from their labels."""
    ordered = sorted(group, key=lambda c: int(c.labels.get(LABEL_INSTANCE, 0)))
    labels = ordered[0].labels
    urls = tuple(f"http://127.0.0.1:{c.labels[LABEL_PORT]}" for c in ordered)
    return Replica(
        id=labels[LABEL_REPLICA],
        name=labels[LABEL_JOB],
        version=labels[LABEL_VERSION],
        url=urls[0],
        deployment_timestamp=int(labels[LABEL_TIMESTAMP]),
        endpoints=urls if len(urls) > 1 else (),
    )


def instance_name(replica: Replica, number: int) -> str:
    """The container name of instance ``number`` of ``replica`` (also its ``JOB_REPLICA``)."""
    return replica.id if len(replica.urls) == 1 else f"{replica.id}-{number}"


def groups(found: Iterable[Any]) -> dict[str, list[Any]]:
    """Job containers by the replica they are instances of."""
    grouped: dict[str, list[Any]] = {}
    for container in found:
        grouped.setdefault(container.labels.get(LABEL_REPLICA, ""), []).append(container)
    return grouped


def group_state(
    group: list[Any], crash_limit: int, tails: dict[str, str], expected: Replica | None = None
) -> ReplicaState:
    """A replica's state from its instances': the worst of them, restarts added up.

    ``expected`` is the replica as it was started (its every instance's URL): an instance with
    no container is LOST. Without it, the replica is read from the containers' labels.
    """
    replica = expected or replica_of(group)
    by_url = {f"http://127.0.0.1:{c.labels.get(LABEL_PORT)}": c for c in group}
    instances = []
    for number, url in enumerate(replica.urls):
        container = by_url.get(url)
        if container is None:
            name = instance_name(replica, number)
            instances.append(InstanceState(url, ReplicaStatus.LOST, GONE, name=name))
            continue
        state = state_of(container, crash_limit, tails.get(container.id, ""))
        name = str(container.name)
        instances.append(InstanceState(url, state.status, state.error, state.restarts, name))
    restarts = sum(instance.restarts for instance in instances)
    statuses = {instance.status for instance in instances}
    if ReplicaStatus.ERROR in statuses:
        status = ReplicaStatus.ERROR
    elif statuses == {ReplicaStatus.LOST}:
        status = ReplicaStatus.LOST
    elif statuses == {ReplicaStatus.RUNNING}:
        status = ReplicaStatus.RUNNING
    else:
        status = ReplicaStatus.STARTING
    worst = next((i for i in instances if i.status == status), None)
    error = worst.error if worst is not None else None
    return ReplicaState(replica, status, error, restarts, tuple(instances))


def state_of(container: Any, crash_limit: int, tail: str) -> ReplicaState:
    """A replica's state from its container's: running, restarting, crash-looping, or stopped.

    A container that exited or keeps restarting is ERROR once it restarted ``crash_limit``
    times (or cannot restart), with its exit code and ``tail`` (its last lines). One that
    exited although its restart policy would restart it was stopped by hand (``docker stop``,
    ``docker kill``): Docker leaves it stopped, so it is LOST, for the watcher to start again.
    """
    replica = replica_of([container])
    state = container.attrs.get("State", {})
    restarts = int(container.attrs.get("RestartCount", 0))
    status = str(state.get("Status", "unknown"))
    exit_code = state.get("ExitCode")
    if status == "running" and not state.get("Restarting"):
        return ReplicaState(replica, ReplicaStatus.RUNNING, None, restarts)
    reason = f"the container {status} (exit code {exit_code}, restarted {restarts} times)"
    if tail.strip():
        reason += ":\n" + tail.rstrip()
    stopped = status in {"exited", "dead"} and not state.get("Restarting")
    if stopped and not _restarts_on_its_own(container):
        return ReplicaState(replica, ReplicaStatus.ERROR, reason, restarts)
    if restarts >= crash_limit:
        return ReplicaState(replica, ReplicaStatus.ERROR, reason, restarts)
    if stopped:
        stopped_by_hand = f"the container was stopped (exit code {exit_code}); Docker leaves it so"
        return ReplicaState(replica, ReplicaStatus.LOST, stopped_by_hand, restarts)
    return ReplicaState(replica, ReplicaStatus.STARTING, reason, restarts)


def _restarts_on_its_own(container: Any) -> bool:
    policy = container.attrs.get("HostConfig", {}).get("RestartPolicy", {}).get("Name", "")
    return str(policy) in {"always", "unless-stopped", "on-failure"}


def choose_port(taken: Iterable[int], preferred: int | None = None) -> int:
    """A port free on 127.0.0.1 that no job container of any server claims."""
    claimed = set(taken)
    candidates = [preferred] if preferred else []
    with socket.socket() as probe:  # let the kernel suggest one, then stay in our range
        probe.bind(("127.0.0.1", 0))
        suggested = probe.getsockname()[1]
    candidates += [PORT_RANGE.start + (suggested + i) % len(PORT_RANGE) for i in range(2000)]
    for port in candidates:
        if port is not None and port not in claimed and _free(port):
            return port
    raise OSError("no free port for a job container on 127.0.0.1")


def _free(port: int) -> bool:
    """Whether a server could listen on ``port`` now. The probe sets SO_REUSEADDR as servers
    do, so that a port whose last connections are in TIME_WAIT (a job just stopped) is free."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
