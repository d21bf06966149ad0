"""The wrapper as the local target runs it: the sample's binary, called on every route."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from racetrack_plugins.golang.process import GolangProcessRecipe

from .conftest import SAMPLE, BuildJob, RunningJob, WriteModule, job_spec, running_job

pytestmark = pytest.mark.slow
PREFIX = "/pub/job/golang-primer/0.0.1"


@pytest.fixture(scope="module")
def sample_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("go") is None:
        pytest.skip("go is not installed (Debian package golang-go)")
    env_dir = tmp_path_factory.mktemp("sample-env")
    spec = job_spec(SAMPLE, env_dir.parent)
    GolangProcessRecipe().build(spec, env_dir, lambda line: None)
    return env_dir


@pytest.fixture
def job(sample_env: Path, tmp_path: Path) -> Iterator[RunningJob]:
    with running_job(sample_env, SAMPLE, tmp_path / "job.log", JOB_MAX_BODY_BYTES="1000") as job:
        yield job


@pytest.mark.parametrize("prefix", ["", PREFIX])
def test_perform_and_the_probes_answer_at_the_root_and_under_the_prefix(
    job: RunningJob, prefix: str
) -> None:
    client = job.client
    answer = client.post(f"{prefix}/api/v1/perform", json={"number": 7907})
    assert (answer.status_code, answer.json()) == (200, True)
    assert answer.headers["content-type"] == "application/json"
    assert client.post(f"{prefix}/api/v1/perform", json={"number": 7909}).json() is False
    assert client.get(f"{prefix}/live").json() == {
        "live": True,
        "deployment_timestamp": 1700000123,
    }
    assert client.get(f"{prefix}/ready").json() == {"ready": True}
    assert client.get(f"{prefix}/health").json() == {
        "service": "job",
        "job_name": "golang-primer",
        "job_version": "0.0.1",
        "live": True,
        "ready": True,
        "status": "pass",
        "deployment_timestamp": 1700000123,
    }


def test_bad_bodies_get_400_and_errors_of_perform_500(job: RunningJob) -> None:
    client = job.client
    answer = client.post("/api/v1/perform", json=[7907])
    assert answer.status_code == 400
    assert answer.json() == {
        "error": 'the request body must be a JSON object, like {"name": value}; got an array '
        "instead",
        "type": "ValueError",
    }
    answer = client.post("/api/v1/perform", content=b"{not json")
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("the request body is not valid JSON: ")
    answer = client.post("/api/v1/perform", json={"number": "seven"})
    assert answer.status_code == 500
    assert answer.json() == {"error": "'number' must be a whole number, got seven", "type": "Error"}
    answer = client.post("/api/v1/perform", json={"number": 1, "padding": "x" * 2000})
    assert answer.status_code == 413
    assert answer.json()["type"] == "PayloadTooLarge"
    assert client.post("/api/v1/nothing", json={}).status_code == 404
    assert client.post("/pub/job/another-job/1/api/v1/perform", json={}).status_code == 404


def test_metrics_count_calls_errors_and_latency(job: RunningJob) -> None:
    job.client.post("/api/v1/perform", json={"number": 7})
    job.client.post("/api/v1/perform", json={})
    metrics = job.client.get(f"{PREFIX}/metrics")
    assert metrics.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    lines = metrics.text.splitlines()
    assert "requests_started_total 2" in lines
    assert 'request_internal_errors_total{endpoint="/perform"} 1' in lines
    assert 'request_duration_seconds_bucket{endpoint="/perform",le="+Inf"} 2' in lines
    assert any(
        line.startswith('request_duration_seconds_sum{endpoint="/perform"} ') for line in lines
    )
    assert float(lines[-1].split()[-1]) > time.time() - 60  # last_call_timestamp


def test_docs_are_swagger_ui_with_local_assets_over_openapi(job: RunningJob) -> None:
    client = job.client
    page = client.get(f"{PREFIX}/docs")
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>golang-primer - Swagger UI</title>" in page.text
    assert "http" not in page.text.split("<body>")[1]  # no CDN: every URL is relative
    for asset in ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"):
        answer = client.get(f"{PREFIX}/swagger-ui/{asset}")
        assert answer.status_code == 200, asset
        assert len(answer.content) > 500, asset
    assert client.get(f"{PREFIX}/swagger-ui/%2e%2e/job.go").status_code == 404
    document = client.get(f"{PREFIX}/openapi.json").json()
    assert document["servers"] == [{"url": PREFIX}]
    assert document["info"] == {"title": "golang-primer", "version": "0.0.1"}
    body = document["paths"]["/api/v1/perform"]["post"]["requestBody"]["content"]
    assert body["application/json"]["example"] == {"number": 7907}
    assert client.get("/openapi.json").json()["servers"] == [{"url": "/"}]
    home = client.get(PREFIX)
    assert (home.status_code, home.headers["location"]) == (307, "0.0.1/docs")


def test_the_tracing_id_is_passed_back_and_logged_with_the_caller(job: RunningJob) -> None:
    headers = {"X-Request-Tracing-Id": "trace-77", "X-Caller-Name": "User admin"}
    answer = job.client.post("/api/v1/perform", json={}, headers=headers)
    assert answer.headers["x-request-tracing-id"] == "trace-77"
    assert 'tracing id "trace-77", caller "User admin"' in job.log.read_text()


def test_it_listens_on_loopback_only(job: RunningJob) -> None:
    assert "on http://127.0.0.1:" in job.log.read_text()


def test_sigterm_lets_a_call_in_flight_finish(
    build_job: BuildJob, write_module: WriteModule, tmp_path: Path
) -> None:
    slow = """
    package job

    import "time"

    func Perform(input map[string]interface{}) (interface{}, error) {
        time.Sleep(time.Second)
        return "done", nil
    }
    """
    folder = write_module(**{"job.go": slow})
    env_dir = build_job(folder)
    with running_job(env_dir, folder, tmp_path / "slow.log") as job:
        answers: list[httpx.Response] = []
        caller = threading.Thread(
            target=lambda: answers.append(job.client.post("/api/v1/perform", json={}))
        )
        caller.start()
        time.sleep(0.3)
        job.process.send_signal(signal.SIGTERM)
        caller.join(10)
        assert job.process.wait(10) == 0
        assert [(a.status_code, a.json()) for a in answers] == [(200, "done")]
        assert "stopping after the calls in flight" in job.log.read_text()
