"""Each job of the corpus served by our wrapper and by the original, ``racetrack-job-runner``
1.18.0, as real processes; the answers, status codes and routes are compared.

Both run with the interpreter of one virtual environment, cached outside the clone (the one of
``tests/plugins/python3``: the original wrapper and its dependencies); ours is put first on
``PYTHONPATH`` as ``racetrack_job_wrapper``, as in a job's environment. Settings come from each
job's manifest: the original reads them from ``JOB_MANIFEST_YAML``, ours takes them as options.
The differences that ``docs/job-types/python3.md`` lists as deliberate are asserted as such:
error messages (only the statuses are compared), ``/health``'s fields, ``/live``'s timestamp
type, the duration histogram's name, a generic parameter type's name and the routes that
``/openapi.json`` leaves out.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from racetrack_core.manifest import dump_yaml, load_manifest
from racetrack_core.manifest_spellings import modernize
from tests.compat.corpus import SECRET_TOKEN, corpus, manifest_file
from tests.plugins.python3.conftest import copy_our_wrapper, free_port, reference_python

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

VERSION = "0.0.1"
Request = tuple[str, str, Any]
#: What each job is asked, besides the routes every job has (``COMMON``).
REQUESTS: dict[str, list[Request]] = {
    "adder": [
        ("POST", "/api/v1/perform", {"numbers": [40, 2]}),
        ("POST", "/api/v1/perform", {"numbers": "x", "y": 1}),
        ("GET", "/api/v1/parameters", None),
    ],
    "auxiliary": [
        ("POST", "/api/v1/perform", {"x": 3, "y": 4}),
        ("POST", "/api/v1/explain", {"x": 1, "y": 3}),
        ("POST", "/api/v1/explain", {"x": 0, "y": 0}),
        ("POST", "/api/v1/random", {"start": 0, "end": 100}),
        ("POST", "/api/v1/random", {}),
        ("GET", "/api/v1/parameters", None),
    ],
    "chain": [("POST", "/api/v1/perform", {"numbers": [1, 2, 3]})],
    "concurrency": [("POST", "/api/v1/perform", {"seconds": 0})],
    "custom-metrics": [("POST", "/api/v1/perform", {}), ("POST", "/api/v1/perform", {})],
    "endpoints-v2": [
        ("POST", "/api/v1/perform", {"n": 4}),
        ("POST", "/api/v1/multiply/3?value=2", None),
        ("GET", "/api/v1/square?x=7", None),
        ("GET", "/api/v1/square?x=seven", None),
    ],
    "env-vars": [("POST", "/api/v1/perform", {})],
    "extends-overlay": [("POST", "/api/v1/perform", {})],
    "fastapi-webview": [
        ("POST", "/api/v1/perform", {}),
        ("GET", "/api/v1/webview/items/3", None),
        ("GET", "/api/v1/webview/items/three", None),
    ],
    "flask-jinja": [
        ("POST", "/api/v1/perform", {"name": "Ada"}),
        ("GET", "/api/v1/webview/", None),
        ("GET", "/api/v1/webview/missing", None),
    ],
    "old-uvicorn": [("POST", "/api/v1/perform", {})],
    "request-context": [("POST", "/api/v1/perform", {})],
    "secret-vars": [("POST", "/api/v1/perform", {})],
    "static-files": [
        ("GET", "/api/v1/readme", None),
        ("GET", "/api/v1/config", None),
        ("GET", "/api/v1/docs/first.txt", None),
        ("GET", "/api/v1/docs/missing.txt", None),
    ],
}
#: Routes every job has; through Pub's prefixes too (the job's name and version, and ``fatman``).
COMMON: list[Request] = [
    ("GET", "/ready", None),
    ("GET", "/", None),
    ("GET", "/api/v1/nothing-here", None),
]
#: Differences listed in docs/job-types/python3.md, by job and request: (ours, the original's).
DOCUMENTED: dict[tuple[str, str, str], tuple[Any, Any]] = {
    # The parameter's type: a generic type with its arguments here, its bare name there.
    ("adder", "GET", "/api/v1/parameters"): (
        (200, [{"name": "numbers", "type": "List[float]"}]),
        (200, [{"name": "numbers", "type": "List"}]),
    ),
}
WRAPPERS = ("ours", "original")
HEADERS = {"X-Request-Tracing-Id": "corpus-trace", "X-Caller-Name": "User admin"}


def settings(folder: Path) -> dict[str, Any]:
    """The job's ``jobtype_extra`` (in any spelling), and its ``runtime_env``."""
    manifest = load_manifest(manifest_file(folder))
    return dict(modernize(manifest.data).data)


def job_env(folder: Path, data: dict[str, Any], pub_url: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "VIRTUAL_ENV", "JOB_", "LOG_"))
    }
    env.update({str(k): str(v) for k, v in (data.get("runtime_env") or {}).items()})
    secrets = folder / ".env.runtime"
    if secrets.is_file():  # as the client sends them: KEY=value, quotes stripped
        for line in secrets.read_text().splitlines():
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip().strip('"')
    env.update(
        {
            "JOB_NAME": data["name"],
            "JOB_VERSION": str(data.get("version", VERSION)),
            "PUB_URL": pub_url,
            "AUTH_TOKEN": "a-family-token",
            "JOB_DEPLOYMENT_TIMESTAMP": "1700000000",
            "JOB_MANIFEST_YAML": dump_yaml(data),
        }
    )
    return env


@contextmanager
def serve(which: str, folder: Path, workdir: Path, ours: Path, pub_url: str = "") -> Iterator[Any]:
    """Serve a copy of the job folder (without its secret file) under one wrapper."""
    python = reference_python()
    job_dir = workdir / f"{folder.name}-{which}"
    shutil.copytree(folder, job_dir, ignore=shutil.ignore_patterns(".env*", "__pycache__"))
    data = settings(folder)
    extra = data.get("jobtype_extra") or {}
    port = free_port()
    env = job_env(folder, data, pub_url)
    entrypoint, entry_class = extra["entrypoint_path"], extra.get("entrypoint_class")
    if which == "ours":
        env["PYTHONPATH"] = str(ours)
        command = [str(python), "-m", "racetrack_job_wrapper", "--entrypoint-path", entrypoint]
        command += ["--job-dir", str(job_dir), "--port", str(port)]
        command += ["--entrypoint-class", entry_class] if entry_class else []
        for key in ("max_concurrency", "max_concurrency_queue"):
            if key in extra:
                command += [f"--{key.replace('_', '-')}", str(extra[key])]
    else:
        command = [str(python), "-m", "racetrack_job_wrapper", "run", entrypoint]
        command += [entry_class] if entry_class else []
        command += ["--port", str(port)]
    log = workdir / f"{folder.name}-{which}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, cwd=job_dir, stdout=output, stderr=output)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, log.read_text(errors="replace")
            try:
                if client.get("/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.1)
        client.pub_url = f"http://127.0.0.1:{port}/pub"  # type: ignore[attr-defined]
        yield client
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def ask(client: httpx.Client, requests: list[Request]) -> list[tuple[int, Any]]:
    """Each answer's status and body (JSON when it is JSON); no body for errors, whose
    messages differ on purpose; the sample lines of ``/metrics`` that the job added."""
    answers: list[tuple[int, Any]] = []
    for method, path, body in requests:
        response = client.request(method, path, json=body, headers=HEADERS)
        content: Any
        try:
            content = response.json()
        except ValueError:
            content = response.text
        if response.status_code >= 400:
            content = None
        elif path == "/":
            content = None  # the location: relative here, absolute there (documented)
        elif path.endswith("openapi.json"):
            content = sorted(content["paths"])  # the routes
        answers.append((response.status_code, content))
    return answers


def routes_of(name: str) -> list[Request]:
    prefixed = [
        (method, f"{prefix}{path}", body)
        for prefix in (f"/pub/job/{name}/{VERSION}", f"/pub/fatman/{name}/{VERSION}")
        for method, path, body in REQUESTS[name][:1]
    ]
    return [*REQUESTS[name], *prefixed, *COMMON]


@pytest.fixture(scope="module")
def ours_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_our_wrapper(tmp_path_factory.mktemp("ours"))


def test_every_corpus_job_has_requests() -> None:
    assert sorted(REQUESTS) == [folder.name for folder in corpus()]


@pytest.mark.parametrize("folder", corpus(), ids=lambda folder: folder.name)
def test_the_job_answers_the_same_under_both_wrappers(
    folder: Path, ours_path: Path, tmp_path: Path
) -> None:
    def under(which: str) -> tuple[Any, ...]:
        with ExitStack() as stack:
            pub_url = ""
            if folder.name == "chain":  # calls adder, served by the same wrapper, as through Pub
                adder = stack.enter_context(
                    serve(which, folder.parent / "adder", tmp_path, ours_path)
                )
                pub_url = adder.pub_url
            job = stack.enter_context(serve(which, folder, tmp_path, ours_path, pub_url))
            answers = ask(job, routes_of(folder.name))
            routes = {
                path: sorted(methods)
                for path, methods in job.get("/openapi.json").json()["paths"].items()
            }
            return answers, job.get("/metrics").text, job.get("/health"), job.get("/live"), routes

    # Both at once (each on its own ports): the test takes the time of one.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = dict(
            zip(("ours", "original"), pool.map(under, ("ours", "original")), strict=True)
        )
    (ours, ours_metrics, ours_health, ours_live, our_routes) = results["ours"]
    (theirs, their_metrics, their_health, their_live, their_routes) = results["original"]
    for request, mine, original in zip(routes_of(folder.name), ours, theirs, strict=True):
        documented = DOCUMENTED.get((folder.name, request[0], request[1]))
        assert (mine, original) == documented if documented else mine == original, request
    assert ours[0][0] == 200, ours
    # The routes in /openapi.json: the same, except those the docs' table lists (the redirect
    # at /, static files and the webview app are served but not listed here).
    shared = set(our_routes) & set(their_routes)
    assert {path: our_routes[path] for path in shared} == {p: their_routes[p] for p in shared}
    assert set(our_routes) - set(their_routes) <= {"/api/v1/webview/"}
    static = {path for method, path, _ in REQUESTS["static-files"] if method == "GET"}
    for path in set(their_routes) - set(our_routes):
        assert path == "/" or path.startswith("/api/v1/webview") or path in static, path
    # Custom metrics: the same samples.
    custom = [line for line in ours_metrics.splitlines() if line.startswith("job_")]
    assert custom == [line for line in their_metrics.splitlines() if line.startswith("job_")]
    # Documented differences: the duration histogram's name, /health's fields, /live's type.
    assert "request_duration_seconds" in ours_metrics
    assert "request_duration_bucket" in their_metrics
    assert ours_health.status_code == their_health.status_code == 200
    missing = set(their_health.json()) - set(ours_health.json())
    assert missing == {"git_version", "deployed_by_racetrack_version", "job_type_version", "error"}
    assert ours_live.status_code == their_live.status_code == 200
    assert ours_live.json()["deployment_timestamp"] == 1700000000
    assert their_live.json()["deployment_timestamp"] == "1700000000"
    if folder.name == "secret-vars":
        assert SECRET_TOKEN not in ours_health.text
