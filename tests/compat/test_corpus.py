"""Jobs written for the original Racetrack, deployed unchanged and called through Pub.

``tests/compat/jobs/`` holds small jobs in the original's style (its documentation's
``perform`` signatures, ``docs_input_example(s)``, ``auxiliary_endpoints`` and
``auxiliary_endpoints_v2``, ``call_job`` chaining, webview apps in Flask and FastAPI, custom
``metrics``, ``static_endpoints``, ``runtime_env``, secret env files, ``extends`` overlays,
``request_context`` and the logging switches, ``max_concurrency_queue``, pinned requirements).
One ``racetrack up`` (SQLite, the local target, free ports) serves the whole module:

- every job is deployed with Racetrack's own ``racetrack deploy`` from its folder, then called
  through Pub for the feature it shows;
- a subset is deployed again (``--force``) with the original client, ``racetrack-client``
  2.35.1, installed by uv into a virtual environment cached outside the clone
  (``compat/racetrack-client-2.35.1-py3.X`` in ``$RACETRACK_CI_CACHE``, by default
  ``/var/cache/racetrack-ci``), and called with its ``racetrack call``;
- the jobs' ``last_call_time`` (Pub's batched reports) shows in the API, both clients'
  ``racetrack list`` and the Dashboard, and ``/pub/fatman/...`` answers with its deprecation.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from uv import find_uv_bin

from racetrack_core.testing.server import QUICK_ENV, RacetrackServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

JOBS = Path(__file__).resolve().parent / "jobs"
PASSWORD = "an admin password for the compatibility corpus"
CLIENT_REQUIREMENT = "racetrack-client==2.35.1"
CLIENT_VERSION_LINE = "racetrack-client version 2.35.1"
#: Deployed again with the original client: plain, auxiliary, extends, secrets, pinned, chained.
ORIGINAL_CLIENT_JOBS = ("adder", "auxiliary", "extends-overlay", "secret-vars", "flask-jinja")
SECRET_TOKEN = "s3cr3t-corpus-token-4711"


def corpus() -> list[Path]:
    return sorted(path for path in JOBS.iterdir() if (path / "job.yaml").is_file())


# --- the server and the clients ---------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RacetrackServer]:
    home = tmp_path_factory.mktemp("compat") / "home"
    env = {**QUICK_ENV, "RACETRACK_PUB_CALL_TIME_INTERVAL": "0.5"}
    with RacetrackServer(home, admin_password=PASSWORD, env=env) as running:
        running.login()
        yield running


@pytest.fixture(scope="module")
def ours(server: RacetrackServer, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Runs Racetrack's own ``racetrack`` with a config folder of its own, logged in."""
    config = tmp_path_factory.mktemp("racetrack-config")
    env = {**os.environ, "RACETRACK_CONFIG_DIR": str(config)}

    def run(*args: str, cwd: Path = JOBS, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "racetrack_cli", *args],
            cwd=cwd,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    assert run("set", "remote", server.remote).returncode == 0
    login = run("login", "--username", "admin", stdin=f"{PASSWORD}\n")
    assert login.returncode == 0, login.stderr
    return run


def client_venv() -> Path:
    """Where the original client's environment is kept: outside the clone, by Python version
    (``~/.cache/racetrack-ci`` when the shared cache folder is not writable)."""
    root = Path(os.environ.get("RACETRACK_CI_CACHE", "/var/cache/racetrack-ci"))
    try:
        (root / "compat").mkdir(parents=True, exist_ok=True)
    except OSError:
        root = Path.home() / ".cache" / "racetrack-ci"
    cache = root / "compat"
    python = f"py{sys.version_info.major}.{sys.version_info.minor}"
    return cache / f"{CLIENT_REQUIREMENT.replace('==', '-')}-{python}"


@pytest.fixture(scope="module")
def original(server: RacetrackServer, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Runs the original ``racetrack`` (racetrack-client 2.35.1) with its own HOME, logged in."""
    venv = client_venv()
    racetrack = venv / "bin" / "racetrack"
    if not _client_works(racetrack):
        shutil.rmtree(venv, ignore_errors=True)
        uv = find_uv_bin()
        for step in (
            [uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
            [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
             CLIENT_REQUIREMENT],
        ):  # fmt: skip
            done = subprocess.run(step, capture_output=True, text=True, check=False, timeout=300)
            assert done.returncode == 0, f"{' '.join(step)}: {done.stderr}{done.stdout}"
        assert _client_works(racetrack)
    home = tmp_path_factory.mktemp("original-home")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RACETRACK_", "VIRTUAL_"))},
        "HOME": str(home),
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "TERM": "dumb",
    }

    def run(*args: str, cwd: Path = JOBS, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(racetrack), *args],
            cwd=cwd,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
            start_new_session=True,  # no terminal: getpass reads the password from stdin
            check=False,
        )

    assert run("set", "remote", server.remote).returncode == 0
    login = run("login", "--username", "admin", stdin=f"{PASSWORD}\n")
    assert login.returncode == 0, login.stdout + login.stderr
    return run


def _client_works(racetrack: Path) -> bool:
    if not racetrack.exists():
        return False
    done = subprocess.run(
        [str(racetrack), "version"], capture_output=True, text=True, check=False, timeout=60
    )
    return CLIENT_VERSION_LINE in done.stdout


@pytest.fixture(scope="module")
def deployed(server: RacetrackServer, ours: Any) -> dict[str, dict[str, Any]]:
    """Every job of the corpus deployed with ``racetrack deploy`` from its folder."""
    for folder in corpus():
        done = ours("deploy", cwd=folder)
        assert done.returncode == 0, f"{folder.name}: {done.stdout}{done.stderr}\n{server.log()}"
    # The chained job calls adder: its family needs the grant, as in the original.
    granted = server.api("POST", "/auth/allow/job_family/chain/job/adder/scope/call_job")
    assert granted.status_code < 300, granted.text
    records = server.api("GET", "/job").json()
    return {record["name"]: record for record in records}


def call(
    server: RacetrackServer, name: str, path: str, payload: Any = None, method: str = "POST"
) -> httpx.Response:
    return httpx.request(
        method,
        f"{server.pub}/job/{name}/latest{path}",
        json=payload if method != "GET" else None,
        headers={"X-Racetrack-Auth": server.token},
        timeout=30,
    )


def ok(answer: httpx.Response) -> Any:
    assert answer.status_code == 200, answer.text
    if answer.headers.get("content-type", "").startswith("application/json"):
        return answer.json()
    return answer.text


# --- every job, deployed with racetrack deploy ------------------------------------------------


def test_the_corpus_holds_at_least_twelve_jobs_and_all_run(
    deployed: dict[str, dict[str, Any]],
) -> None:
    names = [folder.name for folder in corpus()]
    assert len(names) >= 12
    assert {name: deployed[name]["status"] for name in names} == dict.fromkeys(names, "running")
    assert deployed["extends-overlay"]["version"] == "1.2.3"  # from the overlay


def test_perform_and_docs_input_example(server: RacetrackServer, deployed: Any) -> None:
    assert ok(call(server, "adder", "/api/v1/perform", {"numbers": [40, 2]})) == 42
    schema = ok(call(server, "adder", "/openapi.json", method="GET"))
    assert json.dumps({"numbers": [40, 2]}) in json.dumps(schema)
    assert ok(call(server, "adder", "/api/v1/parameters", method="GET")) == [
        {"name": "numbers", "type": "List[float]"}
    ]
    assert call(server, "adder", "/api/v1/perform", {"numbers": "x", "y": 1}).status_code == 400


def test_auxiliary_endpoints_and_their_examples(server: RacetrackServer, deployed: Any) -> None:
    assert ok(call(server, "auxiliary", "/api/v1/perform", {"x": 3, "y": 4})) == 5.0
    assert ok(call(server, "auxiliary", "/api/v1/explain", {"x": 1, "y": 3})) == {
        "x_importance": 0.25,
        "y_importance": 0.75,
    }
    assert ok(call(server, "auxiliary", "/api/v1/random", {"start": 0, "end": 100})) == 50
    schema = json.dumps(ok(call(server, "auxiliary", "/openapi.json", method="GET")))
    assert '"start": 0, "end": 100' in schema


def test_call_job_chains_through_pub(server: RacetrackServer, deployed: Any) -> None:
    assert ok(call(server, "chain", "/api/v1/perform", {"numbers": [1, 2, 3]})) == 12


def test_webview_in_flask_with_pinned_jinja2(server: RacetrackServer, deployed: Any) -> None:
    answer = ok(call(server, "flask-jinja", "/api/v1/perform", {"name": "Ada"}))
    assert answer["jinja2"] == "3.1.4"
    assert answer["flask"] == "2.2.5"
    page = ok(call(server, "flask-jinja", "/api/v1/webview/", method="GET"))
    assert "Hello, webview! (Jinja2 3.1.4)" in page


def test_webview_in_fastapi_with_its_own_starlette(server: RacetrackServer, deployed: Any) -> None:
    version = deployed["fastapi-webview"]["version"]
    assert ok(call(server, "fastapi-webview", "/api/v1/perform", {}))["starlette"] == "0.37.2"
    answer = httpx.get(
        f"{server.pub}/job/fastapi-webview/{version}/api/v1/webview/items/3",
        headers={"X-Racetrack-Auth": server.token},
    )
    assert ok(answer) == {"item_id": 3}


def test_old_uvicorn_pins_are_the_jobs_own(server: RacetrackServer, deployed: Any) -> None:
    answer = ok(call(server, "old-uvicorn", "/api/v1/perform", {}))
    assert (answer["uvicorn"], answer["anyio"]) == ("0.20.0", "3.7.1")


def test_custom_metrics(server: RacetrackServer, deployed: Any) -> None:
    for expected in (1, 2):
        assert ok(call(server, "custom-metrics", "/api/v1/perform", {})) == expected
    text = ok(call(server, "custom-metrics", "/metrics", method="GET"))
    assert 'job_calls_counted{color="blue"} 2.0' in text
    assert "job_is_crazy 1.0" in text


def test_runtime_env_and_racetracks_own_variables(server: RacetrackServer, deployed: Any) -> None:
    assert ok(call(server, "env-vars", "/api/v1/perform", {})) == {
        "greeting": "Hello from runtime_env",
        "debug": "true",
        "job_name": "env-vars",
        "job_version": "0.0.1",
        "has_pub_url": True,
        "has_auth_token": True,
    }


def test_secrets_from_an_env_file_reach_the_job_and_nothing_else(
    server: RacetrackServer, deployed: Any
) -> None:
    assert ok(call(server, "secret-vars", "/api/v1/perform", {})) == {
        "token_sha256": hashlib.sha256(SECRET_TOKEN.encode()).hexdigest(),
        "quoted": "quoted value",
        "plain": "plain value",
        "env_file_shipped": False,
    }
    record = server.api("GET", "/job/secret-vars/latest").text
    assert SECRET_TOKEN not in record
    assert SECRET_TOKEN not in server.api("GET", "/job/secret-vars/latest/build-logs").text


def test_static_endpoints(server: RacetrackServer, deployed: Any) -> None:
    assert ok(call(server, "static-files", "/api/v1/readme", method="GET")).startswith("# Static")
    assert ok(call(server, "static-files", "/api/v1/config", method="GET")) == {"units": "metric"}
    assert (
        ok(call(server, "static-files", "/api/v1/docs/first.txt", method="GET")) == "first page\n"
    )


def test_extends_overlay(server: RacetrackServer, deployed: Any) -> None:
    assert ok(call(server, "extends-overlay", "/api/v1/perform", {})) == {
        "stage": "production",
        "color": "blue",
    }


def test_request_context_and_the_caller_in_the_logs(
    server: RacetrackServer, deployed: Any, ours: Any
) -> None:
    answer = httpx.post(
        f"{server.pub}/job/request-context/latest/api/v1/perform",
        json={},
        headers={"X-Racetrack-Auth": server.token, "X-Request-Tracing-Id": "corpus-trace-1"},
    )
    assert ok(answer) == {"caller": "User admin", "tracing_id": "corpus-trace-1"}
    logs = ours("logs", "request-context", "--tail", "50").stdout
    [line] = [line for line in logs.splitlines() if '"called"' in line]
    record = json.loads(line)
    assert record["tracing_id"] == "corpus-trace-1"
    assert record["caller_name"] == "User admin"


def test_auxiliary_endpoints_v2(server: RacetrackServer, deployed: Any) -> None:
    assert ok(call(server, "endpoints-v2", "/api/v1/multiply/3", {"value": 2})) == 6.0
    assert ok(call(server, "endpoints-v2", "/api/v1/square?x=7", method="GET")) == 49


def test_max_concurrency_queues_then_refuses(server: RacetrackServer, deployed: Any) -> None:
    statuses: list[int] = []

    def slow() -> None:
        statuses.append(
            call(server, "concurrency", "/api/v1/perform", {"seconds": 1.5}).status_code
        )

    threads = [threading.Thread(target=slow) for _ in range(3)]
    for thread in threads:
        thread.start()
        time.sleep(0.2)
    for thread in threads:
        thread.join()
    # One runs, one waits in the queue (max_concurrency_queue: 1), the third is refused.
    assert sorted(statuses) == [200, 200, 429]


# --- the original client, the oldest route, the last call time --------------------------------


def test_the_original_client_deploys_and_calls_the_same_jobs(
    server: RacetrackServer, deployed: Any, original: Any
) -> None:
    for name in ORIGINAL_CLIENT_JOBS:
        done = original("deploy", "--force", cwd=JOBS / name)
        assert done.returncode == 0, f"{name}: {done.stdout}{done.stderr}\n{server.log()}"
    called = original("call", "adder", "/api/v1/perform", '{"numbers": [1, 2]}')
    assert called.returncode == 0, called.stdout + called.stderr
    assert called.stdout.strip() == "3"
    called = original("call", "auxiliary", "/api/v1/explain", '{"x": 1, "y": 1}')
    assert json.loads(called.stdout) == {"x_importance": 0.5, "y_importance": 0.5}
    assert ok(call(server, "extends-overlay", "/api/v1/perform", {}))["stage"] == "production"
    assert ok(call(server, "secret-vars", "/api/v1/perform", {}))["token_sha256"] == (
        hashlib.sha256(SECRET_TOKEN.encode()).hexdigest()
    )
    assert ok(call(server, "flask-jinja", "/api/v1/perform", {"name": "B"}))["jinja2"] == "3.1.4"
    records = {job["name"]: job for job in server.api("GET", "/job").json()}
    for name in ORIGINAL_CLIENT_JOBS:
        assert records[name]["status"] == "running"
        assert records[name]["update_time"] >= deployed[name]["update_time"]


def test_the_fatman_route_answers_with_its_deprecation(
    server: RacetrackServer, deployed: Any
) -> None:
    answer = httpx.post(
        f"{server.pub}/fatman/adder/latest/api/v1/perform",
        json={"numbers": [2, 3]},
        headers={"X-Racetrack-Auth": server.token},
    )
    assert ok(answer) == 5
    assert answer.headers["deprecation"] == "true"
    assert httpx.post(f"{server.pub}/fatman/adder/latest/api/v1/perform").status_code == 401


def test_last_call_time_reaches_the_api_both_lists_and_the_dashboard(
    server: RacetrackServer, deployed: Any, ours: Any, original: Any
) -> None:
    # Set already: ``racetrack deploy`` reads each job's openapi.json through Pub.
    assert deployed["static-files"]["last_call_time"] is not None
    time.sleep(1.1)
    before = time.time()
    ok(call(server, "adder", "/api/v1/perform", {"numbers": [1]}))
    deadline = time.monotonic() + 15
    while True:
        record = server.api("GET", "/job/adder/latest").json()
        if record["last_call_time"] and record["last_call_time"] >= int(before):
            break
        assert time.monotonic() < deadline, record
        time.sleep(0.2)

    listed = ours("list", "-c", "last_call_at").stdout
    [adder_line] = [line for line in listed.splitlines() if line.startswith("adder ")]
    assert time.strftime("%Y-%m-%d", time.localtime(record["last_call_time"])) in adder_line
    listed = original("list", "-c", "last_call_at").stdout
    [adder_line] = [line for line in listed.splitlines() if line.split()[:1] == ["adder"]]
    # The original client shows how long ago (it printed "never" while nothing recorded it).
    assert adder_line.split()[3:] == ["just", "now"]

    page = httpx.get(
        f"{server.dashboard}/dashboard/jobs/adder/{record['version']}",
        cookies={"X-Racetrack-Auth": server.token},
    )
    assert page.status_code == 200
    start = page.text.index("Last called")
    assert "never" not in page.text[start : start + 200]
    assert "just now" in page.text[start : start + 300]
