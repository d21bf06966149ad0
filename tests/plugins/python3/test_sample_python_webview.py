"""``sample/python-webview``: a WSGI page, its static folder, custom metrics, the request."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from racetrack_core import PluginManager
from racetrack_core.manifest import load_manifest
from racetrack_core.schema import validate_manifest

SAMPLE = Path(__file__).resolve().parents[3] / "sample" / "python-webview"
PREFIX = "/pub/job/python-webview/1.0.0"


def test_the_manifest_is_valid() -> None:
    # Built here rather than taken from the shared fixture, whose name is changing.
    plugins = PluginManager().load()
    validated = validate_manifest(load_manifest(SAMPLE / "job.yaml"), plugins)
    assert validated.data["jobtype_extra"]["home_page"] == "/api/v1/webview/"


def test_the_page_the_metrics_and_the_request(
    serve: Callable[..., AbstractContextManager[Any]],
) -> None:
    settings = {"job_name": "python-webview", "job_version": "1.0.0"}
    with serve(SAMPLE, home_page="/api/v1/webview/", **settings) as client:
        greeted = client.post(
            f"{PREFIX}/api/v1/perform",
            json={"name": "Ada"},
            headers={"X-Request-Tracing-Id": "demo-1"},
        )
        assert greeted.json() == "Hello, Ada! (request demo-1)"
        page = client.get(f"{PREFIX}/api/v1/webview/")
        assert page.status_code == 200
        assert "<li>Ada: 1</li>" in page.text
        assert client.get("/api/v1/webview/guests").json() == {"Ada": 1}
        css = client.get(f"{PREFIX}/api/v1/webview/static/style.css")
        assert (css.status_code, css.headers["content-type"].split(";")[0]) == (200, "text/css")
        assert client.get("/api/v1/webview/nothing").status_code == 404
        assert "/api/v1/webview/" in client.get("/openapi.json").json()["paths"]
        metrics = client.get("/metrics").text
        assert "guestbook_guests 1.0" in metrics
        assert 'guestbook_greetings{guest="Ada"} 1.0' in metrics
        home = client.get(f"{PREFIX}/", follow_redirects=False)
        assert home.headers["location"] == "api/v1/webview/"
