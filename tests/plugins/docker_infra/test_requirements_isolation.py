"""A job's requirements win over the wrapper's in a Docker image too (real engine, real builds).

The image installs the job's requirements into the job's venv and vendors the wrapper's
dependencies inside the wrapper's package (``vendoring.py``). Two jobs of ``tests/compat/jobs``
that pin what the wrapper runs on: Flask 2.2.5 with Jinja2 3.1.4, and FastAPI 0.110.1 with its
Starlette 0.37. The local half, with more jobs, is ``tests/plugins/python3``'s
``test_requirements_isolation.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from racetrack_core.infrastructure import Replica
from tests.plugins.docker_infra.conftest import Jobs

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

JOBS = Path(__file__).resolve().parents[2] / "compat" / "jobs"


def start(jobs: Jobs, name: str, entrypoint_class: str) -> Replica:
    driver = jobs.driver()
    extra = {
        "entrypoint_path": "entrypoint.py",
        "entrypoint_class": entrypoint_class,
        "requirements_path": "requirements.txt",
    }
    spec = jobs.spec(name=name, workspace=JOBS / name, manifest={"jobtype_extra": extra})
    driver.prepare(spec, jobs.build_log.append)
    replica = driver.start(spec)
    jobs.wait_until(lambda: jobs.live(replica.url), f"{replica.url}/live", timeout=60)
    return replica


def get(jobs: Jobs, url: str) -> Any:
    answer = jobs.http.get(url)
    assert answer.status_code == 200, answer.text
    return answer


def test_flask_and_jinja2_pins_win_and_the_wrapper_still_serves(jobs: Jobs) -> None:
    replica = start(jobs, "flask-jinja", "FlaskJinja")
    answer = jobs.http.post(replica.url + "/api/v1/perform", json={"name": "Ada"})
    assert answer.json() == {
        "page": "<p>Hello, Ada! (Jinja2 3.1.4)</p>",
        "jinja2": "3.1.4",
        "flask": "2.2.5",
    }
    assert "Jinja2 3.1.4" in get(jobs, replica.url + "/api/v1/webview/").text
    assert "swagger-ui" in get(jobs, replica.url + "/docs").text
    assert "requests_started" in get(jobs, replica.url + "/metrics").text


def test_fastapi_with_its_own_starlette_serves_its_webview(jobs: Jobs) -> None:
    replica = start(jobs, "fastapi-webview", "FastapiWebview")
    answer = jobs.http.post(replica.url + "/api/v1/perform", json={})
    assert answer.json() == {"fastapi": "0.110.1", "starlette": "0.37.2"}
    webview = f"{replica.url}/pub/job/fastapi-webview/0.0.1/api/v1/webview"
    assert get(jobs, webview + "/items/7").json() == {"item_id": 7}
    assert get(jobs, replica.url + "/openapi.json").json()["paths"]
