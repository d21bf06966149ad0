"""The database's record of replica ports, shared by every Lifecycle process."""

from __future__ import annotations

from sqlalchemy import Engine

from racetrack_core.lifecycle.ports import DatabasePorts
from racetrack_core.storage.database import migrate


def test_a_port_is_held_by_one_replica_until_released(engine: Engine) -> None:
    migrate(engine)
    mine = DatabasePorts(engine, "docker", host="box")
    theirs = DatabasePorts(engine, "docker", host="box")  # another Lifecycle process
    assert mine.claim(20001, "rt-a-1", "a", "1.0.0", "d1")
    assert mine.claim(20001, "rt-a-1", "a", "1.0.0", "d1")  # a restored replica keeps it
    assert not theirs.claim(20001, "rt-b-1", "b", "1.0.0", "d2")
    assert theirs.claim(20002, "rt-b-1", "b", "1.0.0", "d2")
    assert mine.taken() == theirs.taken() == {20001, 20002}

    # Ports are per host and per target.
    assert DatabasePorts(engine, "docker", host="other").claim(20001, "rt-c", "c", "1", "d3")
    assert DatabasePorts(engine, "local", host="box").taken() == set()

    mine.release("rt-a-1")
    assert theirs.taken() == {20002}
    assert theirs.claim(20001, "rt-b-2", "b", "1.0.0", "d4")
