"""Listing deployments: newest first, of one job or one version, only what the caller may see."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from racetrack_core.settings import Settings
from tests.lifecycle.records import add_deployments, add_user


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(home=tmp_path / "home", database_url=database_url, job_watch_interval=3600)


def auth(token: str) -> dict[str, str]:
    return {"X-Racetrack-Auth": token}


def listed(client: TestClient, token: str, **params: str) -> list[tuple[str, str, int]]:
    answer = client.get("/api/v1/deploy", params=params, headers=auth(token))
    assert answer.status_code == 200, answer.text
    return [(d["job_name"], d["job_version"], d["create_time"]) for d in answer.json()]


@pytest.fixture
def history(client: TestClient, settings: Settings) -> None:
    """Three old deployments of adder 1.0.0, then many newer ones of other versions (after
    ``client`` has made the tables)."""
    add_deployments(settings, *(("adder", "1.0.0", 1000.0 + i) for i in range(3)))
    add_deployments(settings, *(("adder", "2.0.0", 2000.0 + i) for i in range(5)))
    add_deployments(settings, *(("primer", "1.0.0", 3000.0 + i) for i in range(5)))
    add_deployments(settings, ("adder", "1.0.0", 2500.0), deployed_by="reader@example.com")


@pytest.mark.usefixtures("history")
def test_deployments_of_one_job_or_version_are_found_however_old(
    client: TestClient, token: str
) -> None:
    assert listed(client, token, limit="3") == [("primer", "1.0.0", 3000 + i) for i in (4, 3, 2)]
    assert listed(client, token, job_name="adder", job_version="1.0.0", limit="2") == [
        ("adder", "1.0.0", 2500),
        ("adder", "1.0.0", 1002),
    ]
    assert listed(client, token, job_name="adder", job_version="1.0.0") == [
        ("adder", "1.0.0", t) for t in (2500, 1002, 1001, 1000)
    ]
    assert listed(client, token, job_name="adder") == [
        ("adder", "1.0.0", 2500),
        *(("adder", "2.0.0", 2000 + i) for i in (4, 3, 2, 1, 0)),
        *(("adder", "1.0.0", 1000 + i) for i in (2, 1, 0)),
    ]
    assert listed(client, token, job_name="adder", job_version="9.9.9") == []
    assert listed(client, token, job_name="nothing") == []


@pytest.mark.usefixtures("history")
def test_a_reader_sees_only_the_deployments_the_grants_or_authorship_allow(
    client: TestClient, settings: Settings
) -> None:
    reader = add_user(
        settings,
        "reader@example.com",
        {"scope": "read_job", "job_family": "adder", "job_version": "2.0.0"},
        {"scope": "read_job", "job_family": "primer", "endpoint": "/api/v1"},
    )
    assert {d[:2] for d in listed(client, reader)} == {("adder", "2.0.0"), ("adder", "1.0.0")}
    # Their own deployment of adder 1.0.0, not the three others of it.
    assert listed(client, reader, job_name="adder", job_version="1.0.0") == [
        ("adder", "1.0.0", 2500)
    ]
    assert len(listed(client, reader, job_name="adder")) == 6
    assert listed(client, reader, job_name="primer") == []


@pytest.mark.parametrize(
    ("params", "error"),
    [
        (
            {"job_version": "1.0.0"},
            "query parameter 'job_version' needs 'job_name' too: give job_name and "
            "job_version, or job_name alone",
        ),
        ({"job_name": ""}, "query parameter 'job_name' is empty; give a value or leave it out"),
        (
            {"job_name": "adder", "job_version": ""},
            "query parameter 'job_version' is empty; give a value or leave it out",
        ),
        ({"limit": "many"}, "query parameter 'limit' must be a whole number"),
    ],
)
def test_bad_filters_are_refused_naming_the_parameters(
    shared_client: TestClient, params: dict[str, str], error: str
) -> None:
    token = shared_client.post(
        "/api/v1/users/login",
        json={"username": "admin", "password": "correct horse battery staple"},
    ).json()["token"]
    answer = shared_client.get("/api/v1/deploy", params=params, headers=auth(token))
    assert answer.status_code == 400
    assert answer.json() == {"error": error, "type": "BadRequest"}
