"""The database's record of the ports that job replicas hold: a ``PortLedger`` for targets.

Each row is one port on one host, for one target; a unique constraint on (target, host, port)
makes a claim atomic across every Lifecycle process that shares the database.
"""

from __future__ import annotations

import socket

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from racetrack_core.storage.models import ReplicaPort


class DatabasePorts:
    """Ports held by the replicas of one target on this host (``racetrack_core.infrastructure
    .PortLedger``)."""

    def __init__(self, engine: Engine, target: str, host: str | None = None) -> None:
        self._engine = engine
        self.target = target
        self.host = host or socket.gethostname()

    def claim(
        self, port: int, replica_id: str, name: str, version: str, deployment_id: str
    ) -> bool:
        with Session(self._engine) as session:
            holder = session.exec(
                select(ReplicaPort.replica_id).where(
                    ReplicaPort.target == self.target,
                    ReplicaPort.host == self.host,
                    ReplicaPort.port == port,
                )
            ).first()
            if holder is not None:
                return holder == replica_id
            session.add(
                ReplicaPort(
                    target=self.target,
                    host=self.host,
                    port=port,
                    replica_id=replica_id,
                    job_name=name,
                    job_version=version,
                    deployment_id=deployment_id,
                )
            )
            try:
                session.commit()
            except IntegrityError:  # another process claimed it between our read and write
                return False
        return True

    def release(self, replica_id: str, port: int | None = None) -> None:
        held = delete(ReplicaPort).where(
            col(ReplicaPort.target) == self.target,
            col(ReplicaPort.host) == self.host,
            col(ReplicaPort.replica_id) == replica_id,
        )
        if port is not None:
            held = held.where(col(ReplicaPort.port) == port)
        with Session(self._engine) as session:
            session.exec(held)
            session.commit()

    def taken(self) -> set[int]:
        with Session(self._engine) as session:
            ports = session.exec(
                select(ReplicaPort.port).where(
                    ReplicaPort.target == self.target, ReplicaPort.host == self.host
                )
            )
            return set(ports)
