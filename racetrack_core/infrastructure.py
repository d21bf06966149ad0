"""The contract between the deployment pipeline, job types and infrastructure targets.

The pipeline hands an infrastructure target's driver a ``JobSpec`` (everything needed to build
and run one job version) and drives it through these steps, in order::

    driver.prepare(spec, log)        build what the job needs (environment, image); may be slow
    replica = driver.start(spec)     start a new replica next to any old one; return at once
    ... the pipeline polls replica.url + /live and /ready until the new replica answers ...
    driver.retire(old_replica)       stop the replica it replaced (after traffic moved)

or, when anything fails, ``driver.stop(replica)`` on the new replica only, so the previous
version keeps serving. Drivers are called from worker threads, never from the event loop.

A job type tells targets how to build its jobs through the recipes it offers
(``JobType.recipes``, see ``racetrack_core.recipes``): a process recipe for targets that run
processes on the host, an image recipe for container targets. A target registers the kinds it
accepts, and the manifest validation refuses a pair with none in common, so a driver may count
on finding the recipe of its kind. ``JobSpec`` and ``BuildLog`` are defined with the recipes
(a recipe's methods take them) and named here too, as the driver's inputs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from racetrack_core.errors import RacetrackError
from racetrack_core.recipes import BuildLog as BuildLog
from racetrack_core.recipes import JobSpec as JobSpec


class DeployError(RacetrackError):
    """Building or starting a job failed; the message says why and is shown to the deployer.

    ``log_tail`` holds the last lines of output that explain the failure, if there are any.
    """

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


class ReplicaStatus(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    ERROR = "error"
    LOST = "lost"
    ORPHANED = "orphaned"


@dataclass(frozen=True)
class Replica:
    """A running (or starting) instance of a job version, reachable at ``url``.

    ``url`` is the base URL the job serves at, such as ``http://127.0.0.1:38211``; Pub appends
    ``/pub/job/{name}/{version}{path}``. ``id`` is unique among the replicas of a driver.
    ``endpoints`` lists every instance's base URL when a target runs several instances of the
    deployment (the manifest's ``replicas``), ``url`` first; empty means ``url`` alone. Lifecycle
    waits for each to be live and ready, and Pub spreads calls across them.
    """

    id: str
    name: str
    version: str
    url: str
    deployment_timestamp: int
    endpoints: tuple[str, ...] = ()

    @property
    def urls(self) -> tuple[str, ...]:
        """Every instance's base URL (``url`` alone when there are no ``endpoints``)."""
        return self.endpoints or (self.url,)


@dataclass(frozen=True)
class InstanceState:
    """What a driver knows about one instance (``url``) of a replicated deployment.

    ``LOST`` means the instance is gone (removed, or stopped by hand) and will not come back by
    itself: Lifecycle's watcher then asks the driver to ``restore`` the replica.
    """

    url: str
    status: ReplicaStatus
    error: str | None = None
    restarts: int = 0
    #: What the target calls the instance (a container's name), if it names them.
    name: str = ""


@dataclass(frozen=True)
class ReplicaState:
    """What a driver knows about one replica right now.

    ``instances`` has one entry per URL of ``replica.urls`` when the driver knows each
    instance's state apart (a target that runs the manifest's ``replicas``); empty otherwise.
    """

    replica: Replica
    status: ReplicaStatus
    error: str | None = None
    restarts: int = 0
    instances: tuple[InstanceState, ...] = ()


class PortLedger(Protocol):
    """The database's record of the ports that replicas hold on this host, for this target.

    Every Lifecycle process shares it: a target claims a port before a replica listens on it,
    so that two processes never hand out the same one, and releases it when the replica stops.
    """

    def claim(
        self, port: int, replica_id: str, name: str, version: str, deployment_id: str
    ) -> bool:
        """Record that ``replica_id`` holds ``port``; False when another replica holds it.
        Claiming a port the replica already holds is True (a restored replica)."""

    def release(self, replica_id: str, port: int | None = None) -> None:
        """Forget every port of ``replica_id`` (only ``port``, when given)."""

    def taken(self) -> set[int]:
        """Every port held on this host for this target."""


@dataclass(frozen=True)
class TargetContext:
    """What a target's driver factory receives when a server starts using the target.

    ``home`` is a folder that belongs to this target alone (it survives restarts).
    ``settings`` holds the target's own settings from the server configuration (may be empty).
    ``constraints`` is a pip constraints file pinning the server's own packages, or None.
    ``ports`` is the shared record of the ports replicas hold (None: the target keeps its own).
    """

    home: Path
    settings: Mapping[str, Any] = field(default_factory=dict)
    constraints: Path | None = None
    ports: PortLedger | None = None


@runtime_checkable
class InfrastructureDriver(Protocol):
    """What an infrastructure target's ``driver`` does. Every method is synchronous."""

    def prepare(self, spec: JobSpec, log: BuildLog) -> None:
        """Build what ``spec`` needs to run; raise DeployError when that fails."""

    def start(self, spec: JobSpec) -> Replica:
        """Start a new replica of ``spec`` (next to any running one) and return it at once."""

    def stop(self, replica: Replica) -> None:
        """Stop a replica and forget it; do nothing when it is already gone."""

    def retire(self, replica: Replica) -> None:
        """Stop a replica that a newer one has replaced (after letting calls in flight end)."""

    def delete(self, name: str, version: str) -> None:
        """Stop every replica of a job version and remove its files."""

    def replicas(self) -> list[ReplicaState]:
        """Every replica the driver runs, including ones the database may not know (orphans)."""

    def restore(self, spec: JobSpec, replica: Replica) -> Replica:
        """Make sure a recorded replica runs again (after a restart, or when some of its
        instances are gone): adopt what still runs, start the rest again on the same ports
        where possible; return the replica as it now runs."""

    def logs(self, name: str, version: str, tail: int = 0) -> str:
        """The last ``tail`` lines of a job version's output (0: all of it)."""

    def follow_logs(
        self, name: str, version: str, tail: int = 20, stop: threading.Event | None = None
    ) -> Iterator[str]:
        """The last ``tail`` lines, then each new line as it is written, until the iterator is
        closed or ``stop`` is set; while no line comes it must still notice ``stop`` within a
        second, so that a reader thread can be released when its client goes away."""

    def close(self) -> None:
        """Stop supervising and release what the driver holds; called once when the server
        stops. A target whose replicas live outside the server's process tree (containers)
        may leave them running, for ``restore`` to adopt on the next start; the local target
        stops its processes."""
