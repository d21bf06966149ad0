"""Jobs written for the original Racetrack, deployed unchanged and called through Pub.

``tests/compat/jobs/`` holds small jobs written as the original documents them: its manifest
spellings where its docs and samples used them (``fatman.yaml``, ``lang:``, ``python:``,
``wrapper_properties:``, ``image_type``), its wrapper imports, ``perform`` signatures,
``docs_input_example(s)``, ``auxiliary_endpoints`` and ``auxiliary_endpoints_v2``, ``call_job``
chaining, webview apps in Flask and FastAPI, custom ``metrics``, ``static_endpoints``,
``runtime_env``, secret env files, ``extends`` overlays, ``request_context`` and the logging
switches, ``max_concurrency_queue``, pinned requirements (``corpus.py`` lists the checks).
One ``racetrack up`` (SQLite, the local target, free ports) serves the whole module:

- every job is deployed unchanged with Racetrack's own ``racetrack deploy`` from its folder,
  its deprecation warnings asserted in the CLI's output and in the deployment's record, then
  called through Pub for the feature it shows;
- every job is deployed again (``--force``, four at a time) with the original client,
  ``racetrack-client`` 2.35.1, installed by uv into a virtual environment cached outside the
  clone (``compat/racetrack-client-2.35.1-py3.X`` in ``$RACETRACK_CI_CACHE``, by default
  ``/var/cache/racetrack-ci``): its own deprecation warnings and the server's are asserted,
  and every job is called again for its feature (and with the client's ``racetrack call``);
- the jobs' ``last_call_time`` (Pub's batched reports) shows in the API, both clients'
  ``racetrack list`` and the Dashboard, and ``/pub/fatman/...`` answers with its deprecation.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from uv import find_uv_bin

from racetrack_core.testing.server import QUICK_ENV, RacetrackServer
from tests.compat.corpus import (
    JOBS,
    OLDER_FIELDS,
    ORIGINAL_REPLACEMENT,
    call,
    check_all,
    corpus,
    manifest_file,
    ok,
    older_fields,
    original_pin,
)
from tests.e2e.test_racetrack_client import in_terminal

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PASSWORD = "an admin password for the compatibility corpus"
CLIENT_REQUIREMENT = "racetrack-client==2.35.1"
CLIENT_VERSION_LINE = "racetrack-client version 2.35.1"


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
        "PYTHONUNBUFFERED": "1",
    }

    def run(
        *args: str, cwd: Path = JOBS, stdin: str = "", terminal: bool = False
    ) -> subprocess.CompletedProcess[str]:
        if terminal:  # the client shows its warnings and progress only on a terminal
            code, shown = in_terminal([str(racetrack), *args], env, cwd, timeout=300)
            return subprocess.CompletedProcess(args, code, shown, "")
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


def deployment_warnings(server: RacetrackServer, name: str) -> str:
    """The warnings of the job's newest deployment, as the API gives them."""
    [newest] = server.api("GET", f"/deploy?job_name={name}&limit=1").json()
    assert newest["status"] == "done", newest
    return " ".join((newest["warnings"] or "").split())


def assert_our_warnings(folder: Path, shown: str) -> None:
    """Our server's deprecation warnings, one per older field (and our CLI's for fatman.yaml)."""
    flat = " ".join(shown.split())
    for name in older_fields(folder):
        reason = "means nothing here" if name == "image_type" else "deprecated"
        assert re.search(f"field '{name}'( \\([^)]*\\))?: {reason}", flat), (folder.name, flat)
    if {"python", "wrapper_properties"} & set(older_fields(folder)):
        assert "under 'jobtype_extra:' instead" in flat
    pinned = original_pin(folder)
    if pinned:
        assert f"job type '{pinned}' is a version of the original Racetrack's" in flat


@pytest.fixture(scope="module")
def deployed(server: RacetrackServer, ours: Any) -> dict[str, dict[str, Any]]:
    """Every job of the corpus deployed with ``racetrack deploy`` from its folder, unchanged."""
    for folder in corpus():
        done = ours("deploy", cwd=folder)
        shown = done.stdout + done.stderr
        assert done.returncode == 0, f"{folder.name}: {shown}\n{server.log()}"
        assert_our_warnings(folder, shown)
        if manifest_file(folder).name == "fatman.yaml":
            assert "fatman.yaml is deprecated: rename it to job.yaml" in shown
        assert_our_warnings(folder, deployment_warnings(server, folder.name))
    # The chained job calls adder: its family needs the grant, as in the original.
    granted = server.api("POST", "/auth/allow/job_family/chain/job/adder/scope/call_job")
    assert granted.status_code < 300, granted.text
    records = server.api("GET", "/job").json()
    return {record["name"]: record for record in records}


def job_logs(run: Any) -> Any:
    def logs(name: str) -> str:
        return str(run("logs", name, "--tail", "200").stdout)

    return logs


# --- every job, deployed with racetrack deploy, then with the original client ----------------


def test_the_corpus_holds_at_least_twelve_jobs_in_the_originals_spellings(
    deployed: dict[str, dict[str, Any]],
) -> None:
    names = [folder.name for folder in corpus()]
    assert len(names) >= 12
    assert {name: deployed[name]["status"] for name in names} == dict.fromkeys(names, "running")
    spelled = {folder.name: older_fields(folder) for folder in corpus()}
    assert sum(1 for fields in spelled.values() if "lang" in fields) >= 6
    assert sum(1 for fields in spelled.values() if "python" in fields) >= 6
    assert sum(1 for fields in spelled.values() if "wrapper_properties" in fields) >= 2
    assert sum(1 for f in corpus() if manifest_file(f).name == "fatman.yaml") >= 3
    assert sum(1 for folder in corpus() if original_pin(folder)) >= 2


def test_each_job_deployed_with_racetrack_deploy_shows_its_feature(
    server: RacetrackServer, deployed: Any, ours: Any
) -> None:
    check_all(server, job_logs(ours))


def test_the_original_client_deploys_every_job_unchanged_and_each_shows_its_feature(
    server: RacetrackServer, deployed: Any, ours: Any, original: Any
) -> None:
    def redeploy(folder: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
        return folder, original("deploy", "--force", cwd=folder, terminal=True)

    # In parallel: the server builds nothing new (same manifests, same requirements).
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(redeploy, corpus()))
    for folder, done in results:
        shown = done.stdout + done.stderr
        assert done.returncode == 0, f"{folder.name}: {shown}\n{server.log()}"
        flat = " ".join(shown.split())
        assert f'Job "{folder.name}" has been deployed.' in flat
        if manifest_file(folder).name == "fatman.yaml":
            assert 'You are using old manifest file name "fatman.yaml"' in flat
        fields = older_fields(folder)
        # The original client warns itself, in its words; then shows the server's warnings.
        for name in fields:
            if name in ORIGINAL_REPLACEMENT:
                # (its replacement names end in a colon, and its sentence adds one)
                warning = f"{name}: is deprecated. Use {ORIGINAL_REPLACEMENT[name]}:: instead."
                assert warning in flat, (folder.name, flat)
        assert_our_warnings(folder, shown)
        assert_our_warnings(folder, deployment_warnings(server, folder.name))
    records = {job["name"]: job for job in server.api("GET", "/job").json()}
    for folder in corpus():
        record = records[folder.name]
        assert record["status"] == "running"
        assert record["update_time"] >= deployed[folder.name]["update_time"]
        assert not set(OLDER_FIELDS) & set(
            server.api("GET", f"/job/{folder.name}/latest").json()["manifest"]
        )
    check_all(server, job_logs(ours))
    called = original("call", "adder", "/api/v1/perform", '{"numbers": [1, 2]}')
    assert (called.returncode, called.stdout.strip()) == (0, "3"), called.stderr
    called = original("call", "auxiliary", "/api/v1/explain", '{"x": 1, "y": 1}')
    assert json.loads(called.stdout) == {"x_importance": 0.5, "y_importance": 0.5}


# --- the oldest route, the last call time ------------------------------------------------------


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
    # (``racetrack deploy`` may have set it already, reading the job's openapi.json through Pub
    # for an example; but Pub reports call times every ``pub_call_time_interval``, 10 s, and
    # ``deployed`` reads the records right after the last job's deployment.)
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
