"""The database out of reach: Lifecycle answers 503 with a sentence, then recovers by itself.

PostgreSQL is cut off by a relay on loopback that the test stops and starts (the shared
server is never stopped); SQLite is held by another process's write lock.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from racetrack_core.testing.server import RacetrackServer
from tests.conftest import POSTGRES_URL, _admin_dsn, _drop_database
from tests.faults.conftest import wait_for
from tests.faults.relay import Relay

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

UNAVAILABLE = "the database does not answer"


def assert_unavailable(answer: object) -> None:
    import httpx

    assert isinstance(answer, httpx.Response)
    assert answer.status_code == 503, answer.text
    body = answer.json()
    assert body["type"] == "Unavailable", body
    assert UNAVAILABLE in body["error"], body


@pytest.fixture
def postgres_database() -> Iterator[str]:
    if not POSTGRES_URL:
        pytest.skip("RACETRACK_TEST_POSTGRES_URL is not set (PostgreSQL is not available)")
    name = f"rt_fault_{uuid.uuid4().hex[:12]}"
    admin = _admin_dsn(POSTGRES_URL)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        _drop_database(admin, name)


def test_postgresql_cut_off_gives_503_then_recovers(
    make_server: Callable[..., RacetrackServer], postgres_database: str
) -> None:
    url = make_url(POSTGRES_URL)
    relay = Relay(url.port or 5432)
    relay.start()
    through_relay = url.set(database=postgres_database, host="127.0.0.1", port=relay.port)
    server = make_server(database_url=through_relay.render_as_string(hide_password=False))
    server.start()
    server.login()
    assert server.api("GET", "/job").status_code == 200

    relay.stop()
    try:
        assert_unavailable(server.api("GET", "/job"))
        assert_unavailable(
            server.api(
                "POST",
                "/users/login",
                token=None,
                json={"username": "admin", "password": server.admin_password},
            )
        )
        assert httpx.get(f"{server.lifecycle}/ready").status_code == 503
    finally:
        relay.start()
    wait_for(lambda: server.api("GET", "/job").status_code == 200, 30, "Lifecycle recovers")
    server.login()
    assert server.running


def test_sqlite_locked_by_another_process_gives_503_then_recovers(
    make_server: Callable[..., RacetrackServer],
) -> None:
    server = make_server()
    server.start()
    server.login()
    holder = sqlite3.connect(server.home / "racetrack.db", timeout=30, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert_unavailable(
            server.api(
                "POST",
                "/users/login",
                token=None,
                json={"username": "admin", "password": server.admin_password},
            )
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    server.login()
    assert server.api("GET", "/job").status_code == 200
