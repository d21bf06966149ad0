"""``LocalDriver``: jobs as supervised processes on this machine, listening on 127.0.0.1.

Layout of the target's home::

    envs/<key>/                 an environment built by the job type's process recipe, shared
    replicas/<replica id>.json  a pid file per running replica (see records.py)
    versions/<name>/<version>.json  where each job version keeps its files

and, in each job version's ``state_dir``, ``job.log`` (and ``job.log.1`` once rotated).

Every method may be called from any thread; one lock guards the table of replicas, and waiting
for processes to stop happens outside it. A supervisor thread restarts crashed replicas.
"""

from __future__ import annotations

import re
import secrets
import shutil
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from threading import RLock
from urllib.parse import urlsplit

from racetrack_core.infrastructure import (
    BuildLog,
    DeployError,
    JobSpec,
    Replica,
    ReplicaState,
    ReplicaStatus,
    TargetContext,
)
from racetrack_plugins.local_infra import ports, probes
from racetrack_plugins.local_infra.environments import Environments
from racetrack_plugins.local_infra.launcher import Launcher, recipe_of
from racetrack_plugins.local_infra.logfiles import JobLog
from racetrack_plugins.local_infra.processes import JobProcess, describe_exit, signal_group
from racetrack_plugins.local_infra.records import Records, ReplicaRecord
from racetrack_plugins.local_infra.settings import LocalSettings
from racetrack_plugins.local_infra.supervisor import Supervised, Supervisor

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


class LocalDriver:
    """The ``local`` target's driver; see ``racetrack_core.infrastructure.InfrastructureDriver``."""

    def __init__(self, context: TargetContext) -> None:
        self.home = context.home
        self.settings = LocalSettings.from_mapping(context.settings)
        self._environments = Environments(self.home / "envs")
        self._records = Records(self.home)
        self._launcher = Launcher(self._environments, self._records)
        self._lock = RLock()
        self._replicas: dict[str, Supervised] = {}
        self._closed = False
        self._supervisor = Supervisor(self._supervise, self.settings.supervise_interval_seconds)
        self._supervisor.start()

    # ------------------------------------------------------------ deploying

    def prepare(self, spec: JobSpec, log: BuildLog) -> None:
        """Build (or reuse) the environment that ``spec``'s job type's process recipe describes."""
        self._environments.prepare(recipe_of(spec), spec, log)

    def start(self, spec: JobSpec) -> Replica:
        """Start a new replica on a free port and return it without waiting for it to serve."""
        for part in (spec.name, spec.version):
            if not SAFE_NAME.fullmatch(part):
                raise DeployError(f"the local target cannot run a job named {part!r}")
        replica_id = f"{spec.name}-{spec.version}-{secrets.token_hex(4)}"
        return self._launch(spec, replica_id, preferred_port=None)

    def stop(self, replica: Replica) -> None:
        """Stop a replica (ours or an orphan) and forget it; nothing happens if it is gone."""
        self._stop_all([self._withdraw(replica.id)])

    def retire(self, replica: Replica) -> None:
        """Wait ``drain_seconds`` so that calls in flight end, then stop the replica."""
        time.sleep(self.settings.drain_seconds)
        self.stop(replica)

    def delete(self, name: str, version: str) -> None:
        """Stop every replica of a job version, orphans included, and remove its files."""
        version_of = (name, version)
        with self._lock:
            found = [(entry.replica, entry.spec.state_dir) for entry in self._replicas.values()]
            found += [(record.replica, record.state_dir) for record in self._records.all()]
            found = [(r, state_dir) for r, state_dir in found if (r.name, r.version) == version_of]
            state_dirs = {state_dir for _, state_dir in found}
            indexed = self._records.state_dir(name, version)
            state_dirs |= {indexed} if indexed is not None else set()
            withdrawn = [self._withdraw(replica_id) for replica_id in {r.id for r, _ in found}]
        self._stop_all(withdrawn)
        for state_dir in state_dirs:
            shutil.rmtree(state_dir, ignore_errors=True)
        self._records.forget_version(name, version)

    def restore(self, spec: JobSpec, replica: Replica) -> Replica:
        """Make a replica recorded before a server restart run again; return it as it is now.

        A process that still runs from before the restart (found by its pid file) is adopted
        when it answers ``/live`` with the spec's deployment timestamp: it keeps serving without
        a gap. Otherwise it is stopped and a fresh process starts, on the same port if that is
        free, after rebuilding the environment if it is gone.
        """
        with self._lock:
            current = self._replicas.get(replica.id)
            if current is not None:
                return current.replica
        record = self._records.load(replica.id)
        if record is not None:
            adopted = self._adopt(spec, record)
            if adopted is not None:
                return adopted
            self._records.forget(replica.id)
        recipe = recipe_of(spec)
        if not self._environments.is_ready(self._environments.path(recipe, spec)):
            log = JobLog(spec.state_dir, self.settings.log_max_bytes)
            self._environments.prepare(recipe, spec, log.note)
        preferred = record.port if record is not None else urlsplit(replica.url).port
        return self._launch(spec, replica.id, preferred)

    def close(self) -> None:
        """Stop the supervisor, then every replica this driver runs (orphans are left alone)."""
        self._supervisor.stop()
        with self._lock:
            self._closed = True
            withdrawn = [self._withdraw(replica_id) for replica_id in list(self._replicas)]
        self._stop_all(withdrawn)

    # ------------------------------------------------------------ reporting

    def replicas(self) -> list[ReplicaState]:
        """Every replica this driver runs, then every orphan.

        An orphan is a live process named in a pid file that this driver neither started nor
        adopted; a pid file whose process is gone is removed.
        """
        with self._lock:
            entries = [
                (entry, entry.replica, entry.process, entry.served)
                for entry in self._replicas.values()
            ]
            orphans = self._orphans()
        return [self._state_of(*entry) for entry in entries] + orphans

    def logs(self, name: str, version: str, tail: int = 0) -> str:
        """The last ``tail`` lines (0: all) that a job version's replicas and the driver wrote."""
        log = self._log(name, version)
        return "" if log is None else log.tail(tail)

    def follow_logs(
        self, name: str, version: str, tail: int = 20, stop: threading.Event | None = None
    ) -> Iterator[str]:
        """The last ``tail`` lines, then each new one (without line ending), until closed or
        ``stop`` is set.

        Nothing at all for a job version the driver never ran.
        """
        log = self._log(name, version)
        if log is not None:
            yield from log.follow(tail, stop)

    # ------------------------------------------------------------ internals

    def _launch(self, spec: JobSpec, replica_id: str, preferred_port: int | None) -> Replica:
        spec.state_dir.mkdir(parents=True, exist_ok=True)
        self._records.remember_version(spec.name, spec.version, spec.state_dir)
        with self._lock:
            if self._closed:
                raise DeployError("the local target is shutting down: no job can start now")
            if replica_id in self._replicas:  # restored twice at once: one process is enough
                return self._replicas[replica_id].replica
            port = ports.choose(preferred_port, taken=self._ports_taken())
            entry = Supervised(
                spec=spec,
                replica=Replica(
                    replica_id, spec.name, spec.version, ports.url(port), spec.deployment_timestamp
                ),
                port=port,
                log=JobLog(spec.state_dir, self.settings.log_max_bytes),
            )
            self._launcher.launch(entry)
            self._replicas[replica_id] = entry
            return entry.replica

    def _supervise(self) -> None:
        """One look at every replica: notice crashes, restart those whose delay has passed."""
        now = time.monotonic()
        with self._lock:
            for entry in list(self._replicas.values()):
                if entry.process is not None and entry.process.exited():
                    self._crashed(entry, now)
                elif entry.restart_due(now):
                    self._restart(entry, now)
                entry.log.rotate_if_needed()

    def _crashed(self, entry: Supervised, now: float) -> None:
        process = entry.process
        assert process is not None
        signal_group(process.pid, signal.SIGKILL)  # whatever it started in the background
        self._records.forget(entry.replica.id)
        entry.crashed(describe_exit(process), now, self.settings)

    def _restart(self, entry: Supervised, now: float) -> None:
        entry.restart_at = None
        try:
            port = ports.choose(entry.port, taken=self._ports_taken(excluding=entry.replica.id))
            if port != entry.port:
                entry.log.note(f"port {entry.port} is taken; {entry.replica.id} moves to {port}")
                entry.port = port
                entry.replica = replace(entry.replica, url=ports.url(port))
            self._launcher.launch(entry)
        except (DeployError, OSError) as error:
            entry.crashed(f"could not start: {error}", now, self.settings)
            return
        entry.restarts += 1

    def _adopt(self, spec: JobSpec, record: ReplicaRecord) -> Replica | None:
        """Supervise the process in ``record`` if it still serves ``spec``; else stop it."""
        process = JobProcess.adopt(record.pid, record.started)
        if process is None:
            return None
        if probes.live_deployment_timestamp(record.port) != spec.deployment_timestamp:
            process.stop(self.settings.stop_grace_seconds)
            return None
        log = JobLog(spec.state_dir, self.settings.log_max_bytes)
        with self._lock:
            if record.replica.id in self._replicas:  # restored twice at once
                return self._replicas[record.replica.id].replica
            entry = Supervised(
                spec=spec,
                replica=record.replica,
                port=record.port,
                log=log,
                command=record.command,
                process=process,
                served=True,
            )
            self._replicas[record.replica.id] = entry
        log.note(f"adopted {record.replica.id} (pid {record.pid}) after a server restart")
        self._records.remember_version(spec.name, spec.version, spec.state_dir)
        return record.replica

    def _withdraw(self, replica_id: str) -> JobProcess | None:
        """Take a replica out of the table and its pid file; return its process, if alive."""
        with self._lock:
            entry = self._replicas.pop(replica_id, None)
            record = self._records.load(replica_id)
            self._records.forget(replica_id)
        if entry is not None:
            entry.log.note(f"stopping {replica_id}")
            return entry.process
        if record is not None:
            return JobProcess.adopt(record.pid, record.started)
        return None

    def _stop_all(self, processes: Iterable[JobProcess | None]) -> None:
        """SIGTERM every process at once, then give them the grace period together."""
        alive = [process for process in processes if process is not None]
        for process in alive:
            process.terminate()
        deadline = time.monotonic() + self.settings.stop_grace_seconds
        for process in alive:
            process.kill(max(deadline - time.monotonic(), 0.0))

    def _state_of(
        self,
        entry: Supervised,
        replica: Replica,
        process: JobProcess | None,
        served: bool,
    ) -> ReplicaState:
        restarts = entry.restarts
        if entry.error is not None:
            return ReplicaState(replica, ReplicaStatus.ERROR, entry.error, restarts)
        if process is None or process.exited():  # a crash the supervisor has yet to handle
            return ReplicaState(replica, ReplicaStatus.STARTING, entry.last_exit, restarts)
        if not served and probes.accepts_connections(urlsplit(replica.url).port or 0):
            with self._lock:
                if entry.process is process:
                    entry.served = served = True
        status = ReplicaStatus.RUNNING if served else ReplicaStatus.STARTING
        return ReplicaState(replica, status, None, restarts)

    def _ports_taken(self, excluding: str | None = None) -> set[int]:
        return {
            entry.port for replica_id, entry in self._replicas.items() if replica_id != excluding
        }

    def _state_dir(self, name: str, version: str) -> Path | None:
        """The state folder of the newest replica of a job version (whose log is of interest)."""
        with self._lock:
            for entry in reversed(self._replicas.values()):
                if (entry.spec.name, entry.spec.version) == (name, version):
                    return entry.spec.state_dir
        return self._records.state_dir(name, version)

    def _log(self, name: str, version: str) -> JobLog | None:
        state_dir = self._state_dir(name, version)
        return None if state_dir is None else JobLog(state_dir, self.settings.log_max_bytes)

    def _orphans(self) -> list[ReplicaState]:
        """Live processes from pid files that are not in the table; forget dead ones (lock held)."""
        found = []
        for record in self._records.all():
            if record.replica.id in self._replicas:
                continue
            if JobProcess.adopt(record.pid, record.started) is None:
                self._records.forget(record.replica.id)
            else:
                found.append(ReplicaState(record.replica, ReplicaStatus.ORPHANED))
        return found
