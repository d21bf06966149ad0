"""One real ``racetrack up`` shared by a module's refusal checks, logged in as the admin.

Checks that deploy jobs, or that need a fresh server, use ``racetrack_server`` instead.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from racetrack_core.testing.server import QUICK_ENV, RacetrackServer


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RacetrackServer]:
    home = tmp_path_factory.mktemp("security") / "racetrack-home"
    with RacetrackServer(home, env=QUICK_ENV) as server:
        server.login()
        yield server
