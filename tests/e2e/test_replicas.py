"""Racetrack as replicas: two Lifecycle and two Pub processes (``racetrack serve``) over one
PostgreSQL, jobs on the local target, all on free 127.0.0.1 ports.

Twenty deployments requested at once through both Lifecycles each finish once; a Lifecycle
killed (SIGKILL) in the middle of deployments leaves none of them in progress (each is done, or
failed by the other replica with the reason); calls through both Pubs succeed meanwhile; the
login rate limit counts the failures made through both Lifecycles.

Bounded: about a minute to start the four processes and deploy the first job (which builds the
environment the others reuse), under a minute for the rest.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from racetrack_core.manifest import load_manifest
from racetrack_core.source import pack_build_context
from racetrack_core.testing.server import free_port
from tests.conftest import POSTGRES_URL, _admin_dsn, _drop_database, in_ci

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

PRIMER = Path(__file__).resolve().parents[2] / "sample" / "python-primer"
PASSWORD = "the admin's pass phrase for replicas"
LEASE_TTL = 3.0
AUTH = "X-Racetrack-Auth"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    if not POSTGRES_URL:
        if in_ci():
            pytest.fail("RACETRACK_TEST_POSTGRES_URL is not set")
        pytest.skip("RACETRACK_TEST_POSTGRES_URL is not set (PostgreSQL is not available)")
    name = f"rt_test_{uuid.uuid4().hex[:12]}"
    admin = _admin_dsn(POSTGRES_URL)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        _drop_database(admin, name)


class Replicas:
    """The processes of one Racetrack made of replicas, sharing a home folder and a database."""

    def __init__(self, home: Path, database_url: str) -> None:
        self.home = home
        self.database_url = database_url
        self.ports = {name: free_port() for name in ("lc1", "lc2", "pub1", "pub2")}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs = home.parent / "logs"
        self.logs.mkdir(exist_ok=True)

    def url(self, name: str) -> str:
        base = f"http://127.0.0.1:{self.ports[name]}"
        return f"{base}/lifecycle" if name.startswith("lc") else f"{base}/pub"

    def start(self, name: str) -> None:
        self.launch(name)
        self.wait(name)

    def launch(self, name: str) -> None:
        service = "lifecycle" if name.startswith("lc") else "pub"
        port_option = "--lifecycle-port" if service == "lifecycle" else "--pub-port"
        # Each Pub asks its own Lifecycle (pub1 the one killed below).
        lifecycle = self.url("lc1" if name in {"lc1", "pub1"} else "lc2")
        env = {
            **os.environ,
            "RACETRACK_ADMIN_PASSWORD": PASSWORD,
            "RACETRACK_LEASE_TTL": str(LEASE_TTL),
            "RACETRACK_JOB_WATCH_INTERVAL": "0.5",
            "RACETRACK_PUB_AUTH_CACHE_TTL": "1",
            # While its Lifecycle is down, a Pub answers from the permissions it last saw.
            "RACETRACK_PUB_AUTH_STALE_TTL": "600",
            "RACETRACK_INTERNAL_LIFECYCLE_URL": lifecycle,
            "RACETRACK_EXTERNAL_PUB_URL": self.url("pub1"),
            "RACETRACK_INTERNAL_PUB_URL": self.url("pub1"),
            "RACETRACK_DEPLOY_WORKERS": "4",
        }
        command = [
            sys.executable,
            "-m",
            "racetrack_cli",
            "serve",
            service,
            "--home",
            str(self.home),
            "--db",
            self.database_url,
            port_option,
            str(self.ports[name]),
            "--verbose",
        ]
        with (self.logs / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env
            )

    def wait(self, name: str) -> None:
        probe = "/api/v1/info" if name.startswith("lc") else "/live"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.processes[name].poll() is None, self.log(name)
            try:
                if httpx.get(self.url(name) + probe, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{name} did not start:\n{self.log(name)}")

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.is_file() else ""

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        # Jobs that the killed Lifecycle started run in sessions of their own: stop them too.
        for pid_file in (self.home / "targets" / "local" / "replicas").glob("*.json"):
            pid = json.loads(pid_file.read_text()).get("pid")
            if isinstance(pid, int):
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def replicas(tmp_path: Path, postgres_url: str) -> Iterator[Replicas]:
    racetrack = Replicas(tmp_path / "home", postgres_url)
    try:
        # Both Lifecycles start at once on an empty database and home folder: one migrates,
        # makes the admin, the internal token and the key; the other waits and reuses them.
        for group in (("lc1", "lc2"), ("pub1", "pub2")):
            for name in group:
                racetrack.launch(name)
            for name in group:
                racetrack.wait(name)
        yield racetrack
    finally:
        racetrack.stop_all()


def deploy(lifecycle: str, token: str, name: str) -> str:
    manifest = {**load_manifest(PRIMER / "job.yaml").data, "name": name, "version": "1.0.0"}
    body = {"manifest": manifest, "build_context": pack_build_context(PRIMER)}
    answer = httpx.post(f"{lifecycle}/api/v1/deploy", json=body, headers={AUTH: token}, timeout=60)
    assert answer.status_code in {200, 201, 202}, answer.text
    deployment_id: str = answer.json()["id"]
    return deployment_id


def deployment(lifecycle: str, token: str, deployment_id: str) -> dict[str, Any]:
    answer = httpx.get(
        f"{lifecycle}/api/v1/deploy/{deployment_id}", headers={AUTH: token}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    record: dict[str, Any] = answer.json()
    return record


def wait_all(lifecycle: str, token: str, ids: list[str], timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        records = [deployment(lifecycle, token, i) for i in ids]
        if all(r["status"] != "in_progress" for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.5)


def call(pub: str, token: str, name: str) -> httpx.Response:
    return httpx.post(
        f"{pub}/job/{name}/latest/api/v1/perform",
        json={"number": 7},
        headers={AUTH: token},
        timeout=30,
    )


def test_replicas_share_deployments_leases_and_the_login_limit(replicas: Replicas) -> None:
    lc1, lc2 = replicas.url("lc1"), replicas.url("lc2")
    login = httpx.post(
        f"{lc1}/api/v1/users/login", json={"username": "admin", "password": PASSWORD}, timeout=30
    )
    assert login.status_code == 200, login.text
    token = login.json()["token"]

    # One job first: it builds the environment that the others reuse.
    first = wait_all(lc2, token, [deploy(lc2, token, "warm")], timeout=120)[0]
    assert first["status"] == "done", f"{first}\n{replicas.log('lc2')}"
    for pub in ("pub1", "pub2"):
        answer = call(replicas.url(pub), token, "warm")
        assert answer.status_code == 200, answer.text

    # Twenty at once, through both Lifecycles.
    names = [f"rep-{n:02d}" for n in range(20)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        ids = list(pool.map(lambda n: deploy(lc1 if int(n[-2:]) % 2 else lc2, token, n), names))
    records = wait_all(lc2, token, ids, timeout=120)
    assert [r["status"] for r in records] == ["done"] * 20, [
        (r["job_name"] if "job_name" in r else r["id"], r["error"]) for r in records
    ]
    listed = httpx.get(f"{lc1}/api/v1/job", headers={AUTH: token}, timeout=30).json()
    assert sorted(j["name"] for j in listed) == sorted([*names, "warm"])
    # Each ran exactly once: one deployment row, one "deployed" event per job.
    dsn = _admin_dsn(replicas.database_url)
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT job_name, count(*) FROM deployment GROUP BY job_name"
        ).fetchall()
        events = conn.execute(
            "SELECT job_name, count(*) FROM audit_event WHERE kind = 'job_deployed' "
            "GROUP BY job_name"
        ).fetchall()
    assert dict(rows) == dict.fromkeys([*names, "warm"], 1)
    assert dict(events) == dict.fromkeys([*names, "warm"], 1)

    # The login rate limit: failures through either Lifecycle count together.
    for attempt in range(5):
        lifecycle = lc1 if attempt % 2 else lc2
        refused = httpx.post(
            f"{lifecycle}/api/v1/users/login",
            json={"username": "mallory@example.com", "password": f"wrong {attempt}"},
            timeout=30,
        )
        assert refused.status_code == 401, refused.text
    for lifecycle in (lc1, lc2):
        limited = httpx.post(
            f"{lifecycle}/api/v1/users/login",
            json={"username": "mallory@example.com", "password": "a guess"},
            timeout=30,
        )
        assert limited.status_code == 429, limited.text

    # Calls through both Pubs keep succeeding while lc1 dies in the middle of deployments.
    failures: list[str] = []
    stop = threading.Event()

    def keep_calling() -> None:
        while not stop.is_set():
            for pub in ("pub1", "pub2"):
                answer = call(replicas.url(pub), token, "warm")
                if answer.status_code != 200:
                    failures.append(f"{pub}: {answer.status_code} {answer.text[:200]}")
            time.sleep(0.05)

    caller = threading.Thread(target=keep_calling)
    caller.start()
    try:
        victims = [deploy(lc1, token, f"victim-{n}") for n in range(4)]
        time.sleep(0.3)  # admitted and under way: the phases have started
        replicas.kill("lc1")
        ended = wait_all(lc2, token, victims, timeout=LEASE_TTL * 4 + 10)
    finally:
        stop.set()
        caller.join()
    assert failures == []
    for record in ended:
        assert record["status"] in {"done", "failed"}, record
        if record["status"] == "failed":
            assert "stopped before it finished" in record["error"], record
    assert any(r["status"] == "failed" for r in ended), "lc1 finished every deployment first"
    with psycopg.connect(dsn) as conn:
        stuck = conn.execute("SELECT id FROM deployment WHERE status = 'in_progress'").fetchall()
    assert stuck == []
