"""``GET /api/v1/job_family/jobs``: families grouped, filtered, sorted and paged on the server,
over real job rows (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from starlette.testclient import TestClient

from racetrack_core.settings import Settings
from tests.lifecycle.records import add_jobs, add_user

ROUTE = "/api/v1/job_family/jobs"


def manifest(name: str, owner: str) -> str:
    return f"name: {name}\nowner_email: {owner}\njobtype: python3:latest\n"


@pytest.fixture
def jobs(settings: Settings) -> Settings:
    now = time.time()
    add_jobs(
        settings,
        ("alpha", "0.9.0"),
        manifest_yaml=manifest("alpha", "ann@example.com"),
        updated_at=now - 10,
    )
    add_jobs(
        settings,
        ("alpha", "0.10.0"),
        manifest_yaml=manifest("alpha", "ann@example.com"),
        updated_at=now - 50,
    )
    add_jobs(
        settings,
        ("beta", "1.0.0"),
        manifest_yaml=manifest("beta", "bob@example.com"),
        updated_at=now - 100,
        status="error",
    )
    add_jobs(
        settings,
        ("gamma", "2.0.0"),
        manifest_yaml=manifest("gamma", "gus@example.com"),
        updated_at=now,
    )
    return settings


def listing(client: TestClient, token: str, **params: Any) -> Any:
    answer = client.get(ROUTE, params=params, headers={"X-Racetrack-Auth": token})
    assert answer.status_code == 200, answer.text
    return answer.json()


def names(page: Any) -> list[str]:
    return [family["name"] for family in page["families"]]


def test_families_are_grouped_newest_version_first_and_sorted(
    client: TestClient, token: str, jobs: Settings
) -> None:
    page = listing(client, token)
    assert names(page) == ["gamma", "alpha", "beta"]  # by their newest update
    alpha = page["families"][1]
    assert [job["version"] for job in alpha["jobs"]] == ["0.10.0", "0.9.0"]
    assert alpha["jobs"][0]["owner_email"] == "ann@example.com"
    assert "manifest" not in alpha["jobs"][0]
    assert "manifest_yaml" not in alpha["jobs"][0]
    assert {k: page[k] for k in ("total", "matching", "matching_families", "page", "pages")} == {
        "total": 4,
        "matching": 4,
        "matching_families": 3,
        "page": 1,
        "pages": 1,
    }
    assert names(listing(client, token, sort="name")) == ["alpha", "beta", "gamma"]
    assert names(listing(client, token, sort="status"))[0] == "beta"


def test_filters_by_text_and_status(client: TestClient, token: str, jobs: Settings) -> None:
    assert names(listing(client, token, q="BOB@example")) == ["beta"]
    assert names(listing(client, token, q="0.10")) == ["alpha"]
    only_error = listing(client, token, status="error")
    assert names(only_error) == ["beta"]
    assert (only_error["total"], only_error["matching"]) == (4, 1)
    assert listing(client, token, q="nothing-like-it")["families"] == []


def test_pages(client: TestClient, token: str, jobs: Settings) -> None:
    first = listing(client, token, sort="name", per_page=2)
    assert names(first) == ["alpha", "beta"]
    assert (first["page"], first["pages"], first["per_page"]) == (1, 2, 2)
    assert names(listing(client, token, sort="name", per_page=2, page=2)) == ["gamma"]
    # Past the last page: the last.
    assert listing(client, token, sort="name", per_page=2, page=9)["page"] == 2


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"sort": "size"}, "'sort'"),
        ({"status": "happy"}, "'status'"),
        ({"page": "0"}, "'page'"),
        ({"page": "two"}, "'page'"),
        ({"per_page": "501"}, "'per_page'"),
    ],
)
def test_bad_parameters_are_named(
    client: TestClient, token: str, params: dict[str, str], named: str
) -> None:
    answer = client.get(ROUTE, params=params, headers={"X-Racetrack-Auth": token})
    assert answer.status_code == 400
    assert named in answer.json()["error"]


def test_a_reader_sees_only_what_they_may_read(client: TestClient, jobs: Settings) -> None:
    reader = add_user(jobs, "reader@example.com", {"scope": "read_job", "job_family": "alpha"})
    page = listing(client, reader)
    assert names(page) == ["alpha"]
    assert page["total"] == 2
    versions_only = add_user(
        jobs,
        "one@example.com",
        {"scope": "read_job", "job_family": "alpha", "job_version": "0.9.0"},
    )
    assert [j["version"] for j in listing(client, versions_only)["families"][0]["jobs"]] == [
        "0.9.0"
    ]
