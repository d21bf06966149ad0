"""Faults injected into real processes: a server, its jobs, its database, its disk.

Each test starts its own ``racetrack up`` (:class:`RacetrackServer`) on free ports and does to
it what an outage would: SIGKILL by pid, a database cut off behind a relay or locked, a full
file system. What the suite holds to is in docs/reliability.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from racetrack_core.testing.server import QUICK_ENV, RacetrackServer

PRIMER_DIR = Path(__file__).resolve().parents[2] / "sample" / "python-primer"


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., RacetrackServer]]:
    """Make (not start) servers with homes in ``tmp_path``; each is stopped (or killed) after."""
    made: list[RacetrackServer] = []

    def make(name: str = "home", database_url: str | None = None, **env: str) -> RacetrackServer:
        server = RacetrackServer(
            tmp_path / name, database_url, env={**QUICK_ENV, **env}, stop_timeout=60
        )
        made.append(server)
        return server

    yield make
    for server in made:
        try:
            server.stop()
        finally:
            if server.process is not None and server.process.poll() is None:
                server.process.kill()


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` every 0.2 s until it holds; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s")
