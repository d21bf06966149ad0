"""Listing jobs and families: the records, ``?manifest=false``, and what each caller sees."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from racetrack_core.settings import Settings
from tests.lifecycle.records import add_jobs, add_user

MANIFEST = """\
name: {name}
owner_email: zoë.{name}@example.com
jobtype: python3:latest
git:
  remote: https://github.com/TheRacetrack/racetrack
  directory: sample/{name}
labels:
  description: 'Adds "numbers" \\ and says ✓'
  released: 2024-06-11
"""
MANIFEST_KEYS = {"manifest", "manifest_yaml"}


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    # The watcher stays out of the way of the job records these tests write by hand.
    return Settings(home=tmp_path / "home", database_url=database_url, job_watch_interval=3600)


def auth(token: str) -> dict[str, str]:
    return {"X-Racetrack-Auth": token}


def test_job_records_name_the_owner_and_leave_the_manifest_out_on_request(
    client: TestClient, token: str, settings: Settings
) -> None:
    add_jobs(settings, ("adder", "1.0.0"), manifest_yaml=MANIFEST.format(name="adder"))
    add_jobs(settings, ("primer", "1.0.0"), manifest_yaml="name: primer\njobtype: python3\n")
    add_jobs(settings, ("empty", "1.0.0"), manifest_yaml="")

    listed = client.get("/api/v1/job", headers=auth(token))
    assert listed.status_code == 200, listed.text
    assert listed.headers["content-type"] == "application/json"
    jobs = {job["name"]: job for job in listed.json()}
    # The listing's records are the very records GET /job/{name}/{version} answers.
    for name, job in jobs.items():
        assert job == client.get(f"/api/v1/job/{name}/1.0.0", headers=auth(token)).json()
    assert jobs["adder"]["owner_email"] == "zoë.adder@example.com"
    assert jobs["adder"]["manifest"]["owner_email"] == "zoë.adder@example.com"
    assert jobs["adder"]["manifest"]["labels"] == {
        "description": 'Adds "numbers" \\ and says ✓',
        "released": "2024-06-11",
    }
    assert jobs["adder"]["manifest_yaml"] == MANIFEST.format(name="adder")
    assert jobs["primer"]["owner_email"] is None
    assert jobs["empty"]["owner_email"] is None
    assert jobs["empty"]["manifest"] is None

    explicit = client.get("/api/v1/job", params={"manifest": "true"}, headers=auth(token))
    assert explicit.json() == listed.json()

    slim = client.get("/api/v1/job", params={"manifest": "false"}, headers=auth(token))
    assert slim.status_code == 200, slim.text
    assert [job["name"] for job in slim.json()] == [job["name"] for job in listed.json()]
    for job in slim.json():
        assert not MANIFEST_KEYS & set(job)
        full = jobs[job["name"]]
        assert job == {key: value for key, value in full.items() if key not in MANIFEST_KEYS}


@pytest.mark.parametrize("value", ["no", "False", "1", ""])
def test_another_manifest_value_is_a_bad_request_naming_the_accepted_ones(
    shared_client: TestClient, value: str
) -> None:
    token = shared_client.post(
        "/api/v1/users/login",
        json={"username": "admin", "password": "correct horse battery staple"},
    ).json()["token"]
    answer = shared_client.get("/api/v1/job", params={"manifest": value}, headers=auth(token))
    assert answer.status_code == 400
    assert answer.json() == {
        "error": f"query parameter 'manifest' must be true or false, not {value!r}",
        "type": "BadRequest",
    }


def test_a_reader_lists_the_jobs_and_families_the_grants_cover(
    client: TestClient, token: str, settings: Settings
) -> None:
    add_jobs(settings, ("adder", "1.0.0"), ("adder", "2.0.0"), ("primer", "1.0.0"))
    add_jobs(settings, ("primer", "2.0.0"), ("other", "1.0.0"), ("hidden", "1.0.0"))
    reader = add_user(
        settings,
        "reader@example.com",
        {"scope": "read_job", "job_family": "adder"},
        {"scope": "full_access", "job_family": "primer", "job_version": "2.0.0"},
        {"scope": "read_job", "job_family": "other", "endpoint": "/api/v1"},
        {"scope": "call_job"},
        {"scope": "deploy_job", "job_family": "hidden"},
    )
    for params in ({}, {"manifest": "false"}):
        listed = client.get("/api/v1/job", params=params, headers=auth(reader))
        assert listed.status_code == 200, listed.text
        assert sorted((job["name"], job["version"]) for job in listed.json()) == [
            ("adder", "1.0.0"),
            ("adder", "2.0.0"),
            ("primer", "2.0.0"),
        ]
    # A grant on an endpoint reads no job, but its family is listed as it always was.
    families = client.get("/api/v1/job_family", headers=auth(reader)).json()
    assert [family["name"] for family in families] == ["adder", "other", "primer"]

    everything = client.get("/api/v1/job", headers=auth(token)).json()
    assert len(everything) == 6
    staff_families = client.get("/api/v1/job_family", headers=auth(token)).json()
    assert len(staff_families) == 4


def test_a_grant_on_every_job_lists_every_job(
    client: TestClient, token: str, settings: Settings
) -> None:
    add_jobs(settings, ("adder", "1.0.0"), ("primer", "1.0.0"))
    reader = add_user(settings, "reader@example.com", {"scope": "read_job"})
    listed = client.get("/api/v1/job", headers=auth(reader)).json()
    assert sorted(job["name"] for job in listed) == ["adder", "primer"]
    nobody = add_user(settings, "nobody@example.com", {"scope": "call_job"})
    assert client.get("/api/v1/job", headers=auth(nobody)).json() == []
    assert client.get("/api/v1/job_family", headers=auth(nobody)).json() == []
