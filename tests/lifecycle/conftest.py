"""A Lifecycle app on a fresh database (SQLite and PostgreSQL), served in-process."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from racetrack_core import PluginManager
from racetrack_core.lifecycle import create_app
from racetrack_core.lifecycle.accounts import ensure_admin
from racetrack_core.settings import Settings
from racetrack_core.storage.database import connect, migrate

with warnings.catch_warnings():
    # starlette's TestClient prefers httpx2 and warns once, on import, when it finds httpx.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

ADMIN_PASSWORD = "correct horse battery staple"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(home=tmp_path / "home", database_url=database_url)


@pytest.fixture
def db(database_url: str) -> Iterator[Engine]:
    """A migrated database, SQLite and PostgreSQL, without an app."""
    engine = connect(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    engine = connect(settings.database_url)
    migrate(engine)
    ensure_admin(engine, settings.home, ADMIN_PASSWORD)
    app = create_app(settings, PluginManager(), engine)
    with TestClient(app) as test_client:
        yield test_client
    engine.dispose()


@pytest.fixture(scope="module")
def shared_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app on SQLite for a whole module of read-only checks (the auth matrix)."""
    home = tmp_path_factory.mktemp("lifecycle") / "home"
    settings = Settings(home=home)
    engine = connect(settings.database_url)
    migrate(engine)
    ensure_admin(engine, settings.home, ADMIN_PASSWORD)
    with TestClient(create_app(settings, PluginManager(), engine)) as test_client:
        yield test_client
    engine.dispose()


@pytest.fixture
def token(client: TestClient) -> str:
    answer = client.post(
        "/api/v1/users/login", json={"username": "admin", "password": ADMIN_PASSWORD}
    )
    assert answer.status_code == 200, answer.text
    value: str = answer.json()["token"]
    return value
