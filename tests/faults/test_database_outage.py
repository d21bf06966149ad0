"""Faults: the database goes away under a running Lifecycle, then comes back (issue 15).

PostgreSQL is reached through a TCP relay on 127.0.0.1 that the test can cut: every open
connection is closed and new ones are refused, as when the database restarts or the network
to it fails. Meanwhile every request that needs the database is answered 503 with a sentence
that says so (it used to be a 500 "internal server error"), and once the relay is back the
same requests succeed again, without restarting Lifecycle.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from racetrack_core.testing.server import QUICK_ENV, RacetrackServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


class Relay:
    """Forwards connections from a port of 127.0.0.1 to ``target``; ``cut`` and ``resume``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None

    def resume(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update({client, upstream})
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def relayed(database_url: str, tmp_path: Path) -> Iterator[tuple[RacetrackServer, Relay]]:
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("the relay stands between Lifecycle and PostgreSQL")
    relay = Relay((url.host or "127.0.0.1", url.port or 5432))
    relay.resume()
    through = url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    try:
        with RacetrackServer(tmp_path / "racetrack-home", through, env=QUICK_ENV) as server:
            yield server, relay
    finally:
        relay.cut()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_requests_get_503_while_the_database_is_away_and_succeed_after(
    relayed: tuple[RacetrackServer, Relay],
) -> None:
    server, relay = relayed
    server.login()
    assert server.api("GET", "/job").status_code == 200

    relay.cut()
    for method, path, body in [
        ("GET", "/job", None),
        ("GET", "/deploy", None),
        ("POST", "/users/login", {"username": "admin", "password": server.admin_password}),
    ]:
        answer = server.api(method, path, json=body, timeout=60)
        assert answer.status_code == 503, (path, answer.text)
        assert answer.json() == {
            "error": "the database is unavailable; try again shortly (the server log has "
            "the details)",
            "type": "Unavailable",
        }

    relay.resume()
    deadline = time.monotonic() + 30
    while (answer := server.api("GET", "/job")).status_code != 200:
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.5)
    assert answer.json() == []


def test_a_locked_sqlite_database_gets_503_for_writes_and_recovers(
    racetrack_server: RacetrackServer,
) -> None:
    """SQLite's form of a database that is away: another process holds its write lock longer
    than the busy timeout (5 s). Requests that write (a login; an authenticated request notes
    its token's use) are answered 503, and succeed once the lock is released."""
    import sqlite3

    server = racetrack_server
    server.login()
    path = make_url(server.database_url).database
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # the write lock, until COMMIT
        body = {"username": "admin", "password": server.admin_password}
        for refused in (
            server.api("POST", "/users/login", json=body, timeout=60),
            server.api("GET", "/job", timeout=60),
        ):
            assert refused.status_code == 503, refused.text
            assert refused.json()["type"] == "Unavailable"
    finally:
        holder.execute("COMMIT")
        holder.close()
    assert server.api("POST", "/users/login", json=body).status_code == 200
    assert server.api("GET", "/job").status_code == 200
