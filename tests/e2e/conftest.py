"""The end-to-end tests' ``server``: a real ``racetrack up``, on SQLite and on PostgreSQL.

It is the ``racetrack_server`` fixture of :mod:`racetrack_core.testing.server`, with its database
from the suite's ``database_url`` (so each test runs on both databases); a module may override
``racetrack_server_env`` to give the server other settings. ``server_venv`` is a fresh virtual
environment with Racetrack, for a server that installs plugins (so that they never reach the
tests' own environment).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from racetrack_core.testing.server import RacetrackServer
from tests.e2e.plugin_index import uv

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def racetrack_database_url(database_url: str) -> str:
    return database_url


@pytest.fixture
def server(racetrack_server: RacetrackServer) -> RacetrackServer:
    return racetrack_server


@pytest.fixture(scope="module")
def server_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with this repository installed (editable)."""
    root = tmp_path_factory.mktemp("server-venv") / "env"
    done = subprocess.run(
        [uv(), "venv", "--python", sys.executable, str(root)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    python = str(root / "bin" / "python")
    constraints = str(REPO / "constraints.txt")
    done = subprocess.run(
        [uv(), "pip", "install", "--python", python, "-c", constraints, "-e", str(REPO)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return root
