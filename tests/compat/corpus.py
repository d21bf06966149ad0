"""The corpus of ``tests/compat/jobs/``: its folders, the older spellings each manifest uses,
and, for each job, the calls that show its feature (``CHECKS``), run after every deployment.

Each check calls the job through Pub (``call``) and asserts its answers; it returns nothing.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from racetrack_core.manifest import load_manifest
from racetrack_core.testing.server import RacetrackServer

JOBS = Path(__file__).resolve().parent / "jobs"
SECRET_TOKEN = "s3cr3t-corpus-token-4711"
#: The original's older fields, with the current spelling its own client names.
ORIGINAL_REPLACEMENT = {
    "lang": "jobtype",
    "python": "jobtype_extra",
    "golang": "jobtype_extra",
    "docker": "jobtype_extra",
    "wrapper_properties": "jobtype_extra",
}
OLDER_FIELDS = (*ORIGINAL_REPLACEMENT, "image_type")


def manifest_file(folder: Path) -> Path:
    """``job.yaml``, else the original's older ``fatman.yaml``."""
    modern = folder / "job.yaml"
    return modern if modern.is_file() else folder / "fatman.yaml"


def corpus() -> list[Path]:
    return sorted(path for path in JOBS.iterdir() if manifest_file(path).is_file())


def older_fields(folder: Path) -> list[str]:
    """The older fields a job's manifest (and the base it extends) is written with."""
    data = load_manifest(manifest_file(folder)).data  # with its base, as written
    return [name for name in OLDER_FIELDS if name in data]


def original_pin(folder: Path) -> str:
    """The job type reference of a manifest that pins a version of the original's python3
    job type (2.x), else an empty string."""
    data = load_manifest(manifest_file(folder)).data
    reference = str(data.get("jobtype") or data.get("lang") or "")
    return reference if reference.startswith("python3:2.") else ""


def call(
    server: RacetrackServer,
    name: str,
    path: str,
    payload: Any = None,
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return httpx.request(
        method,
        f"{server.pub}/job/{name}/latest{path}",
        json=payload if method != "GET" else None,
        headers={"X-Racetrack-Auth": server.token, **(headers or {})},
        timeout=30,
    )


def ok(answer: httpx.Response) -> Any:
    assert answer.status_code == 200, answer.text
    if answer.headers.get("content-type", "").startswith("application/json"):
        return answer.json()
    return answer.text


Logs = Callable[[str], str]
Check = Callable[[RacetrackServer, Logs], None]
CHECKS: dict[str, Check] = {}


def check(name: str) -> Callable[[Check], Check]:
    def register(function: Check) -> Check:
        CHECKS[name] = function
        return function

    return register


@check("adder")
def _adder(server: RacetrackServer, logs: Logs) -> None:
    assert ok(call(server, "adder", "/api/v1/perform", {"numbers": [40, 2]})) == 42
    schema = ok(call(server, "adder", "/openapi.json", method="GET"))
    assert json.dumps({"numbers": [40, 2]}) in json.dumps(schema)
    assert ok(call(server, "adder", "/api/v1/parameters", method="GET")) == [
        {"name": "numbers", "type": "List[float]"}
    ]
    assert call(server, "adder", "/api/v1/perform", {"numbers": "x", "y": 1}).status_code == 400


@check("auxiliary")
def _auxiliary(server: RacetrackServer, logs: Logs) -> None:
    assert ok(call(server, "auxiliary", "/api/v1/perform", {"x": 3, "y": 4})) == 5.0
    assert ok(call(server, "auxiliary", "/api/v1/explain", {"x": 1, "y": 3})) == {
        "x_importance": 0.25,
        "y_importance": 0.75,
    }
    assert ok(call(server, "auxiliary", "/api/v1/random", {"start": 0, "end": 100})) == 50
    schema = json.dumps(ok(call(server, "auxiliary", "/openapi.json", method="GET")))
    assert '"start": 0, "end": 100' in schema


@check("chain")
def _chain(server: RacetrackServer, logs: Logs) -> None:
    assert ok(call(server, "chain", "/api/v1/perform", {"numbers": [1, 2, 3]})) == 12


@check("flask-jinja")
def _flask_jinja(server: RacetrackServer, logs: Logs) -> None:
    answer = ok(call(server, "flask-jinja", "/api/v1/perform", {"name": "Ada"}))
    assert (answer["jinja2"], answer["flask"]) == ("3.1.4", "2.2.5")
    page = ok(call(server, "flask-jinja", "/api/v1/webview/", method="GET"))
    assert "Hello, webview! (Jinja2 3.1.4)" in page


@check("fastapi-webview")
def _fastapi_webview(server: RacetrackServer, logs: Logs) -> None:
    assert ok(call(server, "fastapi-webview", "/api/v1/perform", {}))["starlette"] == "0.37.2"
    assert ok(call(server, "fastapi-webview", "/api/v1/webview/items/3", method="GET")) == {
        "item_id": 3
    }


@check("old-uvicorn")
def _old_uvicorn(server: RacetrackServer, logs: Logs) -> None:
    answer = ok(call(server, "old-uvicorn", "/api/v1/perform", {}))
    assert (answer["uvicorn"], answer["anyio"]) == ("0.20.0", "3.7.1")


@check("custom-metrics")
def _custom_metrics(server: RacetrackServer, logs: Logs) -> None:
    first = ok(call(server, "custom-metrics", "/api/v1/perform", {}))
    assert ok(call(server, "custom-metrics", "/api/v1/perform", {})) == first + 1
    text = ok(call(server, "custom-metrics", "/metrics", method="GET"))
    assert f'job_calls_counted{{color="blue"}} {first + 1}.0' in text
    assert "job_is_crazy 1.0" in text


@check("env-vars")
def _env_vars(server: RacetrackServer, logs: Logs) -> None:
    assert ok(call(server, "env-vars", "/api/v1/perform", {})) == {
        "greeting": "Hello from runtime_env",
        "debug": "true",
        "job_name": "env-vars",
        "job_version": "0.0.1",
        "has_pub_url": True,
        "has_auth_token": True,
    }


@check("secret-vars")
def _secret_vars(server: RacetrackServer, logs: Logs) -> None:
    assert ok(call(server, "secret-vars", "/api/v1/perform", {})) == {
        "token_sha256": hashlib.sha256(SECRET_TOKEN.encode()).hexdigest(),
        "quoted": "quoted value",
        "plain": "plain value",
        "env_file_shipped": False,
    }
    assert SECRET_TOKEN not in server.api("GET", "/job/secret-vars/latest").text
    assert SECRET_TOKEN not in server.api("GET", "/job/secret-vars/latest/build-logs").text
    assert SECRET_TOKEN not in server.api("GET", "/deploy?job_name=secret-vars").text


@check("static-files")
def _static_files(server: RacetrackServer, logs: Logs) -> None:
    assert ok(call(server, "static-files", "/api/v1/readme", method="GET")).startswith("# Static")
    assert ok(call(server, "static-files", "/api/v1/config", method="GET")) == {"units": "metric"}
    docs = call(server, "static-files", "/api/v1/docs/first.txt", method="GET")
    assert ok(docs) == "first page\n"


@check("extends-overlay")
def _extends_overlay(server: RacetrackServer, logs: Logs) -> None:
    assert ok(call(server, "extends-overlay", "/api/v1/perform", {})) == {
        "stage": "production",
        "color": "blue",
    }
    assert server.api("GET", "/job/extends-overlay/latest").json()["version"] == "1.2.3"


@check("request-context")
def _request_context(server: RacetrackServer, logs: Logs) -> None:
    tracing_id = f"corpus-trace-{time.monotonic_ns()}"
    headers = {"X-Request-Tracing-Id": tracing_id}
    answer = call(server, "request-context", "/api/v1/perform", {}, headers=headers)
    assert ok(answer) == {"caller": "User admin", "tracing_id": tracing_id}
    lines = [line for line in logs("request-context").splitlines() if tracing_id in line]
    [record] = [json.loads(line) for line in lines if '"called"' in line]
    assert (record["tracing_id"], record["caller_name"]) == (tracing_id, "User admin")


@check("endpoints-v2")
def _endpoints_v2(server: RacetrackServer, logs: Logs) -> None:
    assert ok(call(server, "endpoints-v2", "/api/v1/multiply/3", {"value": 2})) == 6.0
    assert ok(call(server, "endpoints-v2", "/api/v1/square?x=7", method="GET")) == 49


@check("concurrency")
def _concurrency(server: RacetrackServer, logs: Logs) -> None:
    statuses: list[int] = []

    def slow() -> None:
        answer = call(server, "concurrency", "/api/v1/perform", {"seconds": 1.5})
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=slow) for _ in range(3)]
    for thread in threads:
        thread.start()
        time.sleep(0.2)
    for thread in threads:
        thread.join()
    # One runs, one waits in the queue (max_concurrency_queue: 1), the third is refused.
    assert sorted(statuses) == [200, 200, 429]


def check_all(server: RacetrackServer, logs: Logs) -> None:
    """Call every job of the corpus for its feature."""
    names = [folder.name for folder in corpus()]
    assert sorted(CHECKS) == names, "each job of the corpus needs its check"
    for name in names:
        CHECKS[name](server, logs)
