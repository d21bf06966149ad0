"""Faults: the SQLite database file cannot be read (issue 15).

Tests run as root in CI, and root reads a file whatever its permissions, so the file is made
unreadable the two ways that stop root too: a file that is not a SQLite database in its place
(a damaged or mistaken file), or a directory there.

Before it starts, ``racetrack up`` (and ``racetrack serve lifecycle``) refuses with one line
naming the file and what to do (it used to print a traceback). A running Lifecycle whose file
becomes unreadable answers 503 with the usual sentence (it answered 500, and kept answering
500 after the file was put back, since its pooled connections stayed broken), and serves
again as soon as the file is readable, without a restart.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from racetrack_core.testing.server import QUICK_ENV, RacetrackServer, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

NOT_A_DATABASE = b"these are notes, not a SQLite database\n" * 40


def spoil(path: Path, kind: str) -> None:
    """Put something unreadable at ``path``: a text file, or a directory."""
    if kind == "directory":
        path.mkdir()
    else:
        path.write_bytes(NOT_A_DATABASE)


@pytest.mark.parametrize("kind", ["not a database", "directory"])
@pytest.mark.parametrize("command", [["up"], ["serve", "lifecycle"]])
def test_racetrack_refuses_to_start_naming_the_file_and_what_to_do(
    tmp_path: Path, kind: str, command: list[str]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    database = home / "racetrack.db"
    spoil(database, kind)
    ports = {name: str(free_port()) for name in ("lifecycle", "pub", "dashboard")}
    started = subprocess.run(
        [sys.executable, "-m", "racetrack_cli", *command, "--home", str(home)]
        + [option for name, port in ports.items() for option in (f"--{name}-port", port)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**QUICK_ENV, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert started.returncode != 0
    errors = [line for line in started.stderr.splitlines() if line.strip()]
    assert "Traceback" not in started.stderr, started.stderr
    assert len(errors) == 1, started.stderr
    line = errors[0]
    assert str(database) in line
    reason = "is a directory" if kind == "directory" else "is not a SQLite database"
    assert reason in line
    assert "Restore it from a backup" in line
    assert "move it away" in line
    if kind == "not a database":
        assert database.read_bytes() == NOT_A_DATABASE  # left as it was, for its owner


def test_a_database_file_that_becomes_unreadable_gets_503_and_recovers(
    tmp_path: Path,
) -> None:
    with RacetrackServer(tmp_path / "home", env=QUICK_ENV) as server:
        server.login()
        assert server.api("GET", "/job").status_code == 200
        database = server.home / "racetrack.db"
        saved = database.read_bytes()
        with database.open("r+b") as handle:  # in place: open connections see it too
            handle.write(NOT_A_DATABASE)

        # A login writes, so it reads the file itself; a read may first be served from
        # pages a connection keeps in memory, which is not wrong.
        body = {"username": "admin", "password": server.admin_password}
        for method, path, json in [
            ("POST", "/users/login", body),
            ("GET", "/job", None),
            ("GET", "/deploy", None),
        ]:
            for _ in range(2):  # twice: a pooled connection that failed is not used again
                answer = server.api(method, path, json=json, timeout=60)
                assert answer.status_code == 503, (path, answer.text)
                assert answer.json() == {
                    "error": "the database is unavailable; try again shortly (the server "
                    "log has the details)",
                    "type": "Unavailable",
                }
                assert answer.headers["Retry-After"] == "5"
        assert httpx.get(f"{server.lifecycle}/ready", timeout=60).status_code == 503

        with database.open("r+b") as handle:
            handle.write(saved[: len(NOT_A_DATABASE)])
        deadline = time.monotonic() + 30
        while (answer := server.api("GET", "/job")).status_code != 200:
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.5)
        assert answer.json() == []
        assert server.api("POST", "/users/login", json=body).status_code == 200
        assert httpx.get(f"{server.lifecycle}/ready", timeout=60).status_code == 200
