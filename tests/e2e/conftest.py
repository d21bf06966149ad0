"""The end-to-end tests' ``server``: a real ``racetrack up``, on SQLite and on PostgreSQL.

It is the ``racetrack_server`` fixture of :mod:`racetrack_core.testing.server`, with its database
from the suite's ``database_url`` (so each test runs on both databases); a module may override
``racetrack_server_env`` to give the server other settings.
"""

from __future__ import annotations

import pytest

from racetrack_core.testing.server import RacetrackServer


@pytest.fixture
def racetrack_database_url(database_url: str) -> str:
    return database_url


@pytest.fixture
def server(racetrack_server: RacetrackServer) -> RacetrackServer:
    return racetrack_server
