"""Racetrack as replicas: two Lifecycle and two Pub processes (``racetrack serve``) over one
PostgreSQL, jobs on the local target, all on free 127.0.0.1 ports.

Twenty deployments requested at once through both Lifecycles each finish once; a Lifecycle
killed (SIGKILL) in the middle of deployments leaves none of them in progress (each is done, or
failed by the other replica with the reason); calls through both Pubs succeed meanwhile; the
login rate limit counts the failures made through both Lifecycles.

The checks themselves are shared with the same test on Racetrack's own image
(``tests/support/replicas.py``). Bounded: about a minute to start the four processes and
deploy the first job (which builds the environment the others reuse), under a minute for the
rest.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from racetrack_core.testing.server import free_port
from tests.conftest import POSTGRES_URL, _admin_dsn, _drop_database, in_ci
from tests.support.replicas import (
    check_login_limit,
    deploy_first,
    deploy_twenty_at_once,
    kill_during_deployments,
    login,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

PASSWORD = "the admin's pass phrase for replicas"
LEASE_TTL = 3.0


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


def test_replicas_share_deployments_leases_and_the_login_limit(replicas: Replicas) -> None:
    token = login(replicas.url("lc1"), "admin", PASSWORD)
    deploy_first(replicas, token, "warm", timeout=120)
    deploy_twenty_at_once(replicas, token, timeout=120)
    check_login_limit(replicas)
    ended = kill_during_deployments(replicas, token, serving="warm", lease_ttl=LEASE_TTL)
    assert any(r["status"] == "failed" for r in ended), "lc1 finished every deployment first"
