"""The runtime contract: /live, /ready, /health, /metrics and the home-page redirect."""

from __future__ import annotations

import re
import sys

import pytest

from racetrack_plugins.python3.wrapper.app import relative_url

SLOW_INIT = """
    import threading

    release = threading.Event()

    class Job:
        def __init__(self):
            release.wait(10)

        def perform(self, x: int) -> int:
            return x
"""

BROKEN_INIT = """
    class Job:
        def __init__(self):
            raise RuntimeError("model file missing")

        def perform(self) -> int:
            return 1
"""

SIMPLE = """
    class Job:
        def perform(self, x: int) -> int:
            if x < 0:
                raise ValueError("negative")
            return x
"""


def test_live_answers_at_once_and_ready_waits_for_init(write_job, serve):
    with serve(write_job(SLOW_INIT), wait=False, deployment_timestamp=1700000000) as client:
        assert client.get("/live").json() == {"live": True, "deployment_timestamp": 1700000000}
        not_ready = client.get("/pub/job/primer/1.2.3/ready")
        assert (not_ready.status_code, not_ready.json()) == (503, {"ready": False})
        assert client.get("/health").json()["status"] == "fail"
        sys.modules["racetrack_job_entrypoint"].release.set()
        client.app.state.runtime._thread.join(5)
        ready = client.get("/pub/job/primer/1.2.3/ready")
        assert (ready.status_code, ready.json()) == (200, {"ready": True})


def test_a_failing_init_makes_live_answer_500_with_the_error(write_job, serve):
    with serve(write_job(BROKEN_INIT), deployment_timestamp=42) as client:
        live = client.get("/live")
        ready = client.get("/ready")
        health = client.get("/health")
        call = client.post("/api/v1/perform", json={})
    assert live.status_code == 500
    assert live.json() == {
        "live": False,
        "deployment_timestamp": 42,
        "error": "Job.__init__ failed: RuntimeError: model file missing",
    }
    assert ready.status_code == 503
    assert health.json()["status"] == "fail"
    assert health.json()["error"] == live.json()["error"]
    assert call.status_code == 503
    assert "model file missing" in call.json()["error"]


@pytest.mark.parametrize("prefix", ["", "/pub/job/primer/7.0.0"])
def test_health_describes_the_job(write_job, serve, prefix):
    with serve(write_job(SIMPLE), deployment_timestamp=5) as client:
        health = client.get(f"{prefix}/health")
    assert health.status_code == 200
    assert health.json() == {
        "service": "job",
        "job_name": "primer",
        "job_version": "1.2.3",
        "live": True,
        "ready": True,
        "status": "pass",
        "deployment_timestamp": 5,
    }


def test_metrics_count_calls_errors_and_durations(write_job, serve):
    with serve(write_job(SIMPLE)) as client:
        client.post("/api/v1/perform", json={"x": 1})
        client.post("/pub/job/primer/1.2.3/api/v1/perform", json={"x": 2})
        client.post("/api/v1/perform", json={"x": -1})
        client.post("/api/v1/perform", json={"y": 1})  # refused before the call: not counted
        response = client.get("/pub/job/primer/1.2.3/metrics")
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = response.text
    assert "# TYPE requests_started_total counter\nrequests_started_total 3\n" in text
    assert "requests_done_total 3\n" in text
    assert 'endpoint_requests_started_total{endpoint="/perform"} 3\n' in text
    assert 'request_internal_errors_total{endpoint="/perform"} 1\n' in text
    assert "# TYPE request_duration_seconds histogram\n" in text
    assert 'request_duration_seconds_bucket{endpoint="/perform",le="+Inf"} 3\n' in text
    assert 'request_duration_seconds_count{endpoint="/perform"} 3\n' in text
    timestamp = re.search(r"^last_call_timestamp (\S+)$", text, re.MULTILINE)
    assert timestamp is not None
    assert float(timestamp.group(1)) > 1_600_000_000
    for line in text.splitlines():  # every sample line is "name{labels} value"
        assert line.startswith("# ") or re.fullmatch(r"[a-z_]+(\{[^}]*\})? [0-9.e+Inf-]+", line)


def test_metrics_before_any_call(write_job, serve):
    with serve(write_job(SIMPLE)) as client:
        text = client.get("/metrics").text
    assert "requests_started_total 0\n" in text
    assert "last_call_timestamp 0.0\n" in text


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/", "docs"),
        ("/pub/job/primer/1.2.3/", "docs"),
        ("/pub/job/primer/1.2.3", "1.2.3/docs"),
    ],
)
def test_the_root_redirects_relatively_to_the_home_page(write_job, serve, path, location):
    with serve(write_job(SIMPLE)) as client:
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 307
        assert response.headers["location"] == location
        assert client.get(path).url.path.endswith("/docs")


def test_the_home_page_is_configurable(write_job, serve):
    with serve(write_job(SIMPLE), home_page="/api/v1/readme") as client:
        response = client.get("/pub/job/primer/1.2.3/", follow_redirects=False)
    assert response.headers["location"] == "api/v1/readme"


@pytest.mark.parametrize(
    ("from_path", "to_path", "expected"),
    [("/", "/", "."), ("/a/b", "/docs", "b/docs"), ("/a/b/", "/x/y", "x/y")],
)
def test_relative_url(from_path, to_path, expected):
    assert relative_url(from_path, to_path) == expected
