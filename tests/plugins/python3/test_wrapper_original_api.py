"""The original wrapper's public API under our wrapper, compared with the original itself.

Each job here is written as the original wrapper documents it (its imports, its base class,
``webview_app`` in Flask and FastAPI, ``metrics``, ``auxiliary_endpoints_v2``,
``request_context``, ``max_concurrency_queue``). Real processes serve it under our wrapper and
under ``racetrack-job-runner`` 1.18.0, and the answers, status codes and routes are compared.
Error messages differ on purpose (ours name the argument); their statuses do not.
"""

from __future__ import annotations

import concurrent.futures
import json
import textwrap
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

RunJob = Callable[..., AbstractContextManager[Any]]
pytestmark = pytest.mark.slow

ADDER_SOURCE = '''
    import logging

    from flask import Flask, jsonify, request
    from racetrack_job_wrapper.call import call_job
    from racetrack_job_wrapper.entrypoint import JobEntrypoint

    logger = logging.getLogger(__name__)


    class AdderJob(JobEntrypoint):
        def perform(self, a: float, b: float = 1) -> float:
            """Add two numbers."""
            logger.info("adding %s and %s", a, b)
            return a + b

        def docs_input_example(self) -> dict:
            return {"a": 40, "b": 2}

        def auxiliary_endpoints(self) -> dict:
            return {"/explain": self.explain, "/whoami": self.whoami, "/chain": self.chain,
                    "/check": self.check}

        def check(self, n: int) -> int:
            if n < 0:
                raise ValueError("n must not be negative")
            return n

        def explain(self, x: float, y: float) -> dict:
            """Explain the importance of each term."""
            return {"x_importance": x / (x + y), "y_importance": y / (x + y)}

        def whoami(self) -> dict:
            headers = self.request_context.get().headers
            return {"tracing_id": headers.get("X-Request-Tracing-Id")}

        def chain(self) -> object:
            return call_job(self, "adder", "/api/v1/perform", {"a": 1})

        def static_endpoints(self) -> dict:
            return {"/readme": "README.md", "/manifest": ("job.yaml", "application/x-yaml")}

        def metrics(self) -> list:
            return [
                {"name": "job_is_crazy", "description": "Whether it is", "value": 1,
                 "labels": {"color": "blue"}},
                {"name": "job_skipped", "value": None},
            ]

        def webview_app(self, base_url: str):
            app = Flask(__name__)

            @app.route(base_url + "/")
            def index():
                return f"webview at {base_url}"

            @app.route(base_url + "/postme", methods=["POST"])
            def postme():
                return jsonify({"hello": request.json})

            return app.wsgi_app
'''

ROUTES_SOURCE = """
    from http import HTTPMethod
    from typing import Annotated

    from fastapi import Body, FastAPI, Query
    from racetrack_job_wrapper.endpoint_config import EndpointConfig


    class RoutesJob:
        def perform(self, n: int) -> int:
            return n * 2

        def auxiliary_endpoints_v2(self) -> list:
            return [
                EndpointConfig("/multiply/{factor}", HTTPMethod.POST, self.multiply,
                               other_options=dict(tags=["items"])),
                EndpointConfig("/scale", HTTPMethod.POST, self.scale),
                EndpointConfig("/square", HTTPMethod.GET, self.square),
            ]

        def multiply(self, factor: float, value: float) -> float:
            return factor * value

        def scale(self, value: Annotated[float, Body()], by: Annotated[float, Query()] = 2.0):
            return value * by

        def square(self, x: int) -> int:
            return x * x

        def webview_app(self, base_url: str):
            app = FastAPI()

            @app.get("/")
            def index():
                return {"base_url": base_url}

            @app.get("/items/{item}")
            def item(item: int):
                return {"item": item}

            return app
"""

SLOW_SOURCE = """
    import time


    class SlowJob:
        def perform(self, seconds: float = 1.0) -> str:
            time.sleep(seconds)
            return "done"
"""

PREFIX = "/pub/job/adder/1.0.0"


def write(directory: Path, source: str, **files: str) -> Path:
    directory.mkdir()
    (directory / "entrypoint.py").write_text(textwrap.dedent(source))
    for name, content in files.items():
        path = directory / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return directory


def answers(job: Any, requests: list[tuple[str, str, Any]]) -> list[tuple[int, Any]]:
    """The status and the body (JSON when it is JSON, else text) of each request."""
    results = []
    for method, path, body in requests:
        response = job.client.request(
            method, path, json=body, headers={"X-Request-Tracing-Id": "trace-123"}
        )
        try:
            content: Any = response.json()
        except ValueError:
            content = response.text
        if response.status_code >= 400:
            content = None  # the messages differ on purpose
        results.append((response.status_code, content))
    return results


def serve_both(
    run_job: RunJob, original_python: Path, ours_path: Path, job_dir: Path, **kwargs: Any
) -> Callable[[Callable[[Any], Any]], tuple[Any, Any]]:
    def compare(probe: Callable[[Any], Any]) -> tuple[Any, Any]:
        with run_job("ours", original_python, job_dir, ours_path=ours_path, **kwargs) as job:
            ours = probe(job)
        with run_job("original", original_python, job_dir, **kwargs) as job:
            original = probe(job)
        return ours, original

    return compare


ADDER_REQUESTS: list[tuple[str, str, Any]] = [
    ("POST", "/api/v1/perform", {"a": 40, "b": 2}),
    ("POST", f"{PREFIX}/api/v1/perform", {"a": 1}),
    ("POST", "/pub/fatman/adder/1.0.0/api/v1/perform", {"a": 1}),
    ("POST", "/api/v1/perform", {}),
    ("POST", "/api/v1/perform", {"a": 1, "c": 3}),
    ("POST", "/api/v1/explain", {"x": 1, "y": 3}),
    ("POST", "/api/v1/explain", {"x": 0, "y": 0}),
    ("POST", "/api/v1/check", {"n": -1}),
    ("POST", "/api/v1/check", {"n": 1}),
    ("POST", f"{PREFIX}/api/v1/whoami", {}),
    ("GET", "/api/v1/parameters", None),
    ("GET", "/api/v1/readme", None),
    ("GET", f"{PREFIX}/api/v1/manifest", None),
    ("GET", "/api/v1/webview/", None),
    ("GET", f"{PREFIX}/api/v1/webview/", None),
    ("POST", f"{PREFIX}/api/v1/webview/postme", {"n": 1}),
    ("GET", "/api/v1/webview/static/style.css", None),
    ("GET", f"{PREFIX}/api/v1/webview", None),
    ("GET", "/api/v1/nothing-here", None),
    ("GET", "/live", None),
    ("GET", "/ready", None),
    ("GET", "/", None),
    ("GET", f"{PREFIX}/docs", None),
]


def test_a_job_written_for_the_original_answers_the_same(
    run_job: RunJob, original_python: Path, ours_path: Path, tmp_path: Path
) -> None:
    job_dir = write(
        tmp_path / "adder",
        ADDER_SOURCE,
        **{"README.md": "# Adder\n", "job.yaml": "name: adder\n", "static__style.css": "b {}\n"},
    )
    compare = serve_both(run_job, original_python, ours_path, job_dir)
    ours, original = compare(lambda job: answers(job, ADDER_REQUESTS))
    for request, mine, theirs in zip(ADDER_REQUESTS, ours, original, strict=True):
        if request[1] in ("/live", f"{PREFIX}/docs"):  # null and 0; two Swagger pages
            mine, theirs = mine[0], theirs[0]
        assert mine == theirs, request
    assert ours[0] == (200, 42.0)
    assert [status for status, _ in ours[6:9]] == [500, 400, 200]
    assert ours[9] == (200, {"tracing_id": "trace-123"})
    assert ours[13] == (200, "webview at /pub/job/adder/1.0.0/api/v1/webview")
    assert ours[15] == (200, {"hello": {"n": 1}})
    assert ours[16] == (200, "b {}\n")
    assert ours[17] == ours[13]  # without the final slash, the same page


def test_custom_metrics_are_added_to_the_metrics_of_both(
    run_job: RunJob, original_python: Path, ours_path: Path, tmp_path: Path
) -> None:
    job_dir = write(tmp_path / "adder", ADDER_SOURCE, **{"README.md": "", "job.yaml": ""})

    def probe(job: Any) -> list[str]:
        job.client.post("/api/v1/perform", json={"a": 1})
        text = job.client.get("/metrics").text
        return [line for line in text.splitlines() if "job_" in line]

    ours, original = serve_both(run_job, original_python, ours_path, job_dir)(probe)
    assert 'job_is_crazy{color="blue"} 1.0' in ours
    assert 'job_is_crazy{color="blue"} 1.0' in original
    assert "# TYPE job_is_crazy gauge" in ours
    assert not [line for line in ours if "job_skipped" in line]


ROUTES_REQUESTS: list[tuple[str, str, Any]] = [
    ("POST", "/api/v1/perform", {"n": 4}),
    ("POST", "/api/v1/multiply/2.5?value=4", None),
    ("POST", f"{PREFIX}/api/v1/multiply/3?value=2", None),
    ("POST", "/api/v1/scale?by=3", 1.5),
    ("POST", "/api/v1/scale", 1.5),
    ("GET", "/api/v1/square?x=7", None),
    ("GET", "/api/v1/square?x=seven", None),
    ("GET", "/api/v1/webview/", None),
    ("GET", f"{PREFIX}/api/v1/webview", None),
    ("GET", "/api/v1/webview/items/5", None),
    ("GET", f"{PREFIX}/api/v1/webview/items/6", None),
]


def test_auxiliary_endpoints_v2_and_an_asgi_webview_answer_the_same(
    run_job: RunJob, original_python: Path, ours_path: Path, tmp_path: Path
) -> None:
    job_dir = write(tmp_path / "routes", ROUTES_SOURCE)
    compare = serve_both(run_job, original_python, ours_path, job_dir)
    ours, original = compare(lambda job: answers(job, ROUTES_REQUESTS))
    for request, mine, theirs in zip(ROUTES_REQUESTS, ours, original, strict=True):
        assert mine == theirs, request
    assert ours[:7] == [
        (200, 8),
        (200, 10.0),
        (200, 6.0),
        (200, 4.5),
        (200, 3.0),
        (200, 49),
        (422, None),
    ]
    assert ours[7] == ours[8] == (200, {"base_url": "/pub/job/adder/1.0.0/api/v1/webview"})


def test_max_concurrency_queues_calls_then_answers_429_like_the_original(
    run_job: RunJob, original_python: Path, ours_path: Path, tmp_path: Path
) -> None:
    job_dir = write(tmp_path / "slow", SLOW_SOURCE)
    manifest = "jobtype_extra:\n  max_concurrency: 1\n  max_concurrency_queue: 1\n"

    def probe(job: Any) -> list[int]:
        def call(delay: float) -> int:
            import time

            time.sleep(delay)  # in order: one runs, one waits, one finds the queue full
            return int(job.client.post("/api/v1/perform", json={"seconds": 1.5}).status_code)

        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            return list(pool.map(call, [0.0, 0.3, 0.6]))

    ours, original = serve_both(
        run_job,
        original_python,
        ours_path,
        job_dir,
        env={"JOB_MANIFEST_YAML": manifest},
        options=("--max-concurrency", "1", "--max-concurrency-queue", "1"),
    )(probe)
    assert ours == original == [200, 200, 429]


def test_every_log_line_of_a_call_carries_its_tracing_id_and_caller(
    run_job: RunJob, original_python: Path, ours_path: Path, tmp_path: Path
) -> None:
    job_dir = write(tmp_path / "adder", ADDER_SOURCE, **{"README.md": "", "job.yaml": ""})
    env = {"LOG_STRUCTURED": "true", "LOG_CALLER_NAME": "true"}
    with run_job("ours", original_python, job_dir, ours_path=ours_path, env=env) as job:
        headers = {"X-Request-Tracing-Id": "trace-9", "X-Caller-Name": "Job family chain"}
        assert job.client.post("/api/v1/perform", json={"a": 2}, headers=headers).json() == 3.0
        answer = job.client.post("/api/v1/perform", json={"a": "x"}, headers=headers)
        assert answer.status_code == 400
    lines = [json.loads(line) for line in job.log_text().splitlines() if line.startswith("{")]
    assert lines, job.log_text()
    assert all({"time", "lvl", "msg"} <= set(line) for line in lines)
    adding = [line for line in lines if line["msg"] == "adding 2 and 1"]
    assert adding == [adding[0]]
    assert adding[0]["tracing_id"] == "trace-9"
    assert adding[0]["caller_name"] == "Job family chain"
    assert not [line for line in job.log_text().splitlines() if line and line[0] != "{"]


def test_plain_log_lines_carry_the_tracing_id_without_the_caller_by_default(
    run_job: RunJob, original_python: Path, ours_path: Path, tmp_path: Path
) -> None:
    job_dir = write(tmp_path / "adder", ADDER_SOURCE, **{"README.md": "", "job.yaml": ""})
    with run_job("ours", original_python, job_dir, ours_path=ours_path) as job:
        headers = {"X-Request-Tracing-Id": "trace-7", "X-Caller-Name": "someone"}
        job.client.post("/api/v1/perform", json={"a": 2}, headers=headers)
    line = next(line for line in job.log_text().splitlines() if "adding 2 and 1" in line)
    assert line.endswith("adding 2 and 1, tracing_id=trace-7")


def test_the_original_command_line_starts_our_wrapper(
    run_job: RunJob, original_python: Path, ours_path: Path, tmp_path: Path
) -> None:
    """``python -m racetrack_job_wrapper run entrypoint.py`` (the original's) runs ours too."""
    job_dir = write(tmp_path / "slow", SLOW_SOURCE)
    env = {"PYTHONPATH": str(ours_path)}
    with run_job("original", original_python, job_dir, env=env) as job:
        assert job.client.post("/api/v1/perform", json={"seconds": 0}).json() == "done"
        assert "swagger-ui-bundle.js" in job.client.get("/docs").text  # ours, not FastAPI's


@pytest.mark.parametrize(
    "serve_line", ["serve_job_class(SlowJob)", "serve_job_instance(SlowJob())"]
)
def test_serve_job_class_serves_a_class_from_the_jobs_own_program(
    original_python: Path, ours_path: Path, tmp_path: Path, serve_line: str
) -> None:
    """The original's ``serve_job_class(Job)``, from a ``main.py`` of the job's, runs ours."""
    import os
    import socket
    import subprocess
    import time

    import httpx

    job_dir = write(tmp_path / "slow", SLOW_SOURCE)
    (job_dir / "main.py").write_text(
        "from racetrack_job_wrapper.standalone import serve_job_class, serve_job_instance\n"
        "from entrypoint import SlowJob\n"
        f"{serve_line}\n"
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {**os.environ, "PYTHONPATH": str(ours_path), "JOB_PORT": str(port)}
    process = subprocess.Popen(
        [str(original_python), "main.py"],
        cwd=job_dir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None
                try:
                    if client.get("/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline
                time.sleep(0.1)
            assert client.post("/api/v1/perform", json={"seconds": 0}).json() == "done"
    finally:
        process.terminate()
        process.wait(timeout=10)
