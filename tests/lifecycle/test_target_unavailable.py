"""A job whose infrastructure target cannot be reached (its Docker engine is down): its logs,
log stream and delete answer 503 with a sentence naming the target, never a 500, and the
delete keeps the job's record so that it can be tried again."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from racetrack_core import PluginManager
from racetrack_core.lifecycle import create_app
from racetrack_core.lifecycle.accounts import ensure_admin, issue_token
from racetrack_core.settings import Settings
from racetrack_core.storage.database import connect, migrate
from racetrack_core.storage.models import SubjectKind
from tests.lifecycle.records import add_jobs


def closed_port() -> int:
    """A loopback port on which nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    engine_url = f"tcp://127.0.0.1:{closed_port()}"
    settings = Settings(home=tmp_path / "home", targets={"docker": {"base_url": engine_url}})
    engine = connect(settings.database_url)
    migrate(engine)
    ensure_admin(engine, settings.home, "a password for the test")
    token = issue_token(engine, SubjectKind.USER, "admin")
    add_jobs(settings, ("boxed", "1.0.0"), infrastructure_target="docker")
    with TestClient(create_app(settings, PluginManager(), engine)) as test_client:
        yield test_client, {"X-Racetrack-Auth": token}
    engine.dispose()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/job/boxed/1.0.0/logs"),
        ("GET", "/api/v1/job/boxed/1.0.0/logs/stream"),
        ("DELETE", "/api/v1/job/boxed/1.0.0"),
    ],
)
def test_a_target_that_cannot_be_reached_is_a_503_naming_it(
    client: tuple[TestClient, dict[str, str]], method: str, path: str
) -> None:
    test_client, auth = client
    answer = test_client.request(method, path, headers=auth)
    assert answer.status_code == 503, answer.text
    assert answer.json()["type"] == "Unavailable"
    assert "the docker target cannot reach the Docker engine" in answer.json()["error"]
    assert test_client.get("/api/v1/job/boxed/1.0.0", headers=auth).status_code == 200
