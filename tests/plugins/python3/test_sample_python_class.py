"""``sample/python-class``: its manifest is valid, and every wrapper feature it uses answers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from racetrack_core.manifest import load_manifest
from racetrack_core.schema import validate_manifest

if TYPE_CHECKING:
    from starlette.testclient import TestClient

Serve = Callable[..., AbstractContextManager["TestClient"]]

SAMPLE = Path(__file__).resolve().parents[3] / "sample" / "python-class"


def test_the_manifest_is_valid(racetrack_plugin_manager) -> None:
    validated = validate_manifest(load_manifest(SAMPLE / "job.yaml"), racetrack_plugin_manager)
    assert validated.name == "python-class"
    assert validated.job_type.ref.startswith("python3:")
    data = validated.data
    assert data["owner_email"] == "sample@example.com"
    assert data["git"] == {
        "remote": "https://github.com/TheRacetrack/racetrack",
        "directory": "sample/python-class",
    }
    extra = data["jobtype_extra"]
    assert (extra["home_page"], extra["max_concurrency"]) == ("/api/v1/guide", 4)
    for key in ("entrypoint_path", "requirements_path"):
        assert (SAMPLE / extra[key]).is_file()
    assert (SAMPLE / data["runtime_env"]["PLANETS_CATALOGUE"]).is_file()


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch, serve: Serve) -> Iterator[TestClient]:
    """The sample served in-process, as the manifest configures it (cwd is the job directory)."""
    pytest.importorskip("humanize", reason="the sample's requirement (requirements.txt)")
    monkeypatch.chdir(SAMPLE)
    monkeypatch.setenv("PLANETS_CATALOGUE", "data/planets.json")
    with serve(
        SAMPLE,
        "PlanetCatalogue",
        job_name="python-class",
        job_version="1.0.0",
        home_page="/api/v1/guide",
        max_concurrency=4,
    ) as served:
        yield served


def test_perform_takes_typed_arguments_with_defaults(client: TestClient) -> None:
    answer = client.post("/api/v1/perform", json={"planet": "mars"})
    assert answer.status_code == 200
    assert answer.json() == {
        "planet": "Mars",
        "unit": "km",
        "radius": 3390.0,
        "distance_from_sun": 227956000.0,
        "moons": 2,
        "summary": "Mars is 228.0 million km from the Sun",
    }
    miles = client.post("/api/v1/perform", json={"planet": "Earth", "unit": "mi", "precision": 1})
    assert miles.json()["radius"] == 3958.8
    wrong = client.post("/api/v1/perform", json={"planet": "Earth", "unit": "au"})
    assert wrong.status_code == 400
    assert "unit" in wrong.json()["error"]


def test_an_error_in_the_class_is_answered_with_its_message(client: TestClient) -> None:
    answer = client.post("/api/v1/perform", json={"planet": "Pluto"})
    assert answer.status_code == 400  # a ValueError, as the original wrapper answered it
    assert answer.json()["type"] == "ValueError"
    assert answer.json()["error"].startswith("unknown planet 'Pluto'; known planets: Mercury")


def test_auxiliary_endpoints_answer_under_both_prefixes(client: TestClient) -> None:
    compared = client.post("/api/v1/compare", json={"first": "Earth", "second": "Jupiter"})
    assert compared.json() == {"larger": "Jupiter", "smaller": "Earth", "ratio": 10.97}
    names = client.post("/pub/job/python-class/1.0.0/api/v1/planets", json={"sort_by": "name"})
    assert names.json()[:3] == ["Earth", "Jupiter", "Mars"]
    assert client.post("/api/v1/planets", json={}).json()[0] == "Mercury"


def test_the_docs_carry_the_examples_of_every_endpoint(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    examples = {
        path: operation["post"]["requestBody"]["content"]["application/json"]["example"]
        for path, operation in paths.items()
        if "post" in operation
    }
    assert examples == {
        "/api/v1/perform": {"planet": "Mars", "unit": "km", "precision": 0},
        "/api/v1/compare": {"first": "Earth", "second": "Jupiter"},
        "/api/v1/planets": {"sort_by": "name"},
    }
    parameters = client.get("/api/v1/parameters").json()
    assert [p["name"] for p in parameters] == ["planet", "unit", "precision"]


def test_static_endpoints_serve_a_page_and_a_folder(client: TestClient) -> None:
    page = client.get("/api/v1/guide")
    assert page.headers["content-type"].startswith("text/html")
    assert 'src="images/planet.svg"' in page.text
    image = client.get("/pub/job/python-class/1.0.0/api/v1/images/planet.svg")
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/svg+xml"
    assert client.get("/api/v1/images/../entrypoint.py").status_code == 404


def test_the_home_page_is_the_guide(client: TestClient) -> None:
    home = client.get("/", follow_redirects=False)
    assert (home.status_code, home.headers["location"]) == (307, "api/v1/guide")


def test_calls_wait_for_the_slow_init(monkeypatch: pytest.MonkeyPatch, serve: Serve) -> None:
    pytest.importorskip("humanize", reason="the sample's requirement (requirements.txt)")
    monkeypatch.chdir(SAMPLE)
    monkeypatch.setenv("PLANETS_WARMUP_SECONDS", "0.5")
    started = time.monotonic()
    with serve(SAMPLE, "PlanetCatalogue", wait=False) as client:
        assert client.get("/live").status_code == 200
        assert client.get("/ready").status_code == 503
        assert client.post("/api/v1/perform", json={"planet": "Venus"}).status_code == 503
        while client.get("/ready").status_code != 200:
            assert time.monotonic() - started < 10, "__init__ did not finish in 10 s"
            time.sleep(0.02)
        assert time.monotonic() - started >= 0.5
        assert client.post("/api/v1/perform", json={"planet": "Venus"}).status_code == 200
