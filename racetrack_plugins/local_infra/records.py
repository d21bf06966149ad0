"""What the driver writes under its home so that a restarted server can find its jobs again.

``<home>/replicas/<replica id>.json``
    one pid file per replica: which job version it serves, on which port, and which process
    (pid and start time) runs it. Never environment values.
``<home>/versions/<name>/<version>.json``
    where a job version's state folder is, so its logs and files can be found (and deleted)
    after a restart, even with no replica running.

Files are written to a temporary name with mode 600 and renamed into place.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from racetrack_core.infrastructure import Replica


@dataclass(frozen=True)
class ReplicaRecord:
    """A replica's pid file."""

    replica: Replica
    port: int
    pid: int
    started: int
    state_dir: Path
    command: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "replica": asdict(self.replica),
            "port": self.port,
            "pid": self.pid,
            "started": self.started,
            "state_dir": str(self.state_dir),
            "command": list(self.command),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReplicaRecord:
        return cls(
            replica=Replica(**data["replica"]),
            port=int(data["port"]),
            pid=int(data["pid"]),
            started=int(data["started"]),
            state_dir=Path(data["state_dir"]),
            command=tuple(data["command"]),
        )


class Records:
    """The pid files and the version index of one local target home."""

    def __init__(self, home: Path) -> None:
        self.replicas_dir = home / "replicas"
        self.versions_dir = home / "versions"
        self.replicas_dir.mkdir(parents=True, exist_ok=True)
        self.versions_dir.mkdir(parents=True, exist_ok=True)

    def save(self, record: ReplicaRecord) -> None:
        """Write (or replace) the pid file of ``record.replica``."""
        _write_private(self._replica_path(record.replica.id), record.as_json())

    def load(self, replica_id: str) -> ReplicaRecord | None:
        """The pid file of one replica, or None if there is none (or it cannot be read)."""
        return _read_record(self._replica_path(replica_id))

    def forget(self, replica_id: str) -> None:
        """Remove the pid file of one replica."""
        self._replica_path(replica_id).unlink(missing_ok=True)

    def all(self) -> list[ReplicaRecord]:
        """Every pid file that can be read (one that cannot is removed)."""
        found = []
        for path in sorted(self.replicas_dir.glob("*.json")):
            record = _read_record(path)
            if record is None:
                path.unlink(missing_ok=True)
            else:
                found.append(record)
        return found

    def remember_version(self, name: str, version: str, state_dir: Path) -> None:
        """Note where a job version keeps its files."""
        path = self.versions_dir / name / f"{version}.json"
        path.parent.mkdir(exist_ok=True)
        _write_private(path, {"name": name, "version": version, "state_dir": str(state_dir)})

    def state_dir(self, name: str, version: str) -> Path | None:
        """Where a job version keeps its files, if the driver ever ran it."""
        try:
            data = json.loads((self.versions_dir / name / f"{version}.json").read_text())
            return Path(data["state_dir"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def forget_version(self, name: str, version: str) -> None:
        """Remove a job version from the index."""
        (self.versions_dir / name / f"{version}.json").unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # other versions of the job remain
            (self.versions_dir / name).rmdir()

    def _replica_path(self, replica_id: str) -> Path:
        return self.replicas_dir / f"{replica_id}.json"


def _write_private(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.replace(temporary, path)


def _read_record(path: Path) -> ReplicaRecord | None:
    try:
        return ReplicaRecord.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None
