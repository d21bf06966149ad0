"""End to end on the embedded default: ``racetrack up``, deploy, call through Pub, survive.

Each test drives a real server process with real job processes, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from racetrack_core.gitserver import GitServer
from racetrack_core.manifest import load_manifest
from racetrack_core.source import pack_build_context

ADMIN_PASSWORD = "an admin password for the end-to-end tests"
PRIMER_DIR = Path(__file__).resolve().parents[2] / "sample" / "python-primer"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """``racetrack up`` as a child process; ``start``/``stop`` may be called again."""

    home: Path
    database_url: str
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    output: Path | None = None
    token: str = ""

    @property
    def lifecycle(self) -> str:
        return f"http://127.0.0.1:{self.ports['lifecycle']}/lifecycle"

    @property
    def pub(self) -> str:
        return f"http://127.0.0.1:{self.ports['pub']}/pub"

    def start(self) -> None:
        if not self.ports:
            self.ports = {name: free_port() for name in ("lifecycle", "pub", "dashboard")}
        self.output = self.home.parent / f"up-{time.time_ns()}.log"
        env = {
            **os.environ,
            "RACETRACK_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "RACETRACK_JOB_WATCH_INTERVAL": "0.5",
            "RACETRACK_PUB_AUTH_CACHE_TTL": "1",
        }
        with self.output.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "racetrack_cli",
                    "up",
                    "--home",
                    str(self.home),
                    "--db",
                    self.database_url,
                    "--lifecycle-port",
                    str(self.ports["lifecycle"]),
                    "--pub-port",
                    str(self.ports["pub"]),
                    "--dashboard-port",
                    str(self.ports["dashboard"]),
                    "--verbose",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"racetrack up exited:\n{self.log()}")
            try:
                if httpx.get(f"{self.pub}/live", timeout=1).status_code == 200 and (
                    httpx.get(f"{self.lifecycle}/api/v1/info", timeout=1).status_code == 200
                ):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"racetrack up did not answer in time:\n{self.log()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"racetrack up did not stop on Ctrl-C:\n{self.log()}") from None

    def log(self) -> str:
        return self.output.read_text(errors="replace") if self.output else ""

    def login(self) -> str:
        answer = httpx.post(
            f"{self.lifecycle}/api/v1/users/login",
            json={"username": "admin", "password": ADMIN_PASSWORD},
        )
        assert answer.status_code == 200, answer.text
        self.token = answer.json()["token"]
        return self.token

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-Racetrack-Auth": self.token, **kwargs.pop("headers", {})}
        return httpx.request(
            method, f"{self.lifecycle}/api/v1{path}", headers=headers, timeout=30, **kwargs
        )

    def deploy(self, body: dict[str, Any], timeout: float = 180) -> dict[str, Any]:
        """Deploy and wait; return the finished deployment record."""
        answer = self.api("POST", "/deploy", json=body)
        assert answer.status_code == 200, answer.text
        deployment_id = answer.json()["id"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record: dict[str, Any] = self.api("GET", f"/deploy/{deployment_id}").json()
            if record["status"] != "in_progress":
                return record
            time.sleep(0.2)
        raise AssertionError(f"deployment {deployment_id} did not finish:\n{self.log()}")

    def call(self, name: str, version: str, payload: Any, token: str | None = "") -> httpx.Response:
        headers = {}
        token = self.token if token == "" else token
        if token:
            headers["X-Racetrack-Auth"] = token
        return httpx.post(
            f"{self.pub}/job/{name}/{version}/api/v1/perform",
            json=payload,
            headers=headers,
            timeout=30,
        )


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[Server]:
    running = Server(home=tmp_path / "home", database_url=database_url)
    running.start()
    try:
        yield running
    finally:
        running.stop()


pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

UNAUTHENTICATED = {"error": "Unauthenticated: no header X-Racetrack-Auth: not logged in"}


def primer_manifest(**changes: Any) -> dict[str, Any]:
    return {**load_manifest(PRIMER_DIR / "job.yaml").data, **changes}


def deploy_primer(server: Server, **body: Any) -> dict[str, Any]:
    return server.deploy(
        {"manifest": primer_manifest(), "build_context": pack_build_context(PRIMER_DIR), **body}
    )


def test_deploy_from_an_uploaded_context_and_call_through_pub(server: Server) -> None:
    server.login()
    record = deploy_primer(server)
    assert record["status"] == "done", record
    phases = [step["phase"] for step in record["phases"]]
    assert phases == [
        "queued",
        "fetching source",
        "validating manifest",
        "building",
        "starting",
        "waiting for live and ready",
        "switching traffic",
        "post-deploy hooks",
    ]
    assert record["job"]["pub_url"] == f"{server.pub}/job/primer/0.0.1"

    answer = server.call("primer", "latest", {"number": 7907})
    assert answer.status_code == 200, answer.text
    assert answer.json() is True
    assert server.call("primer", "0.0.1", {"number": 7906}).json() is False

    refused = server.call("primer", "latest", {"number": 7907}, token=None)
    assert refused.status_code == 401
    assert refused.json() == UNAUTHENTICATED

    again = server.api("POST", "/deploy", json={"manifest": primer_manifest()})
    assert again.status_code == 409
    assert "--force" in again.json()["error"]

    jobs = server.api("GET", "/job").json()
    assert [(job["name"], job["version"], job["status"]) for job in jobs] == [
        ("primer", "0.0.1", "running")
    ]
    logs = server.api("GET", "/job/primer/latest/logs?tail=0").json()["logs"]
    assert isinstance(logs, str)
    build_logs = server.api("GET", "/job/primer/0.0.1/build-logs").json()["logs"]
    assert "==> building" in build_logs
    with httpx.stream(
        "GET",
        f"{server.lifecycle}/api/v1/job/primer/latest/logs/stream?tail=3",
        headers={"X-Racetrack-Auth": server.token},
        timeout=10,
    ) as followed:
        assert followed.headers["content-type"].startswith("text/plain")
        first = next(followed.iter_lines())
    assert first in logs

    assert server.api("DELETE", "/job/primer/0.0.1").json() is None
    time.sleep(1.2)  # Pub's cached answer (1 s in these tests) expires
    gone = server.call("primer", "latest", {"number": 7907})
    assert gone.status_code == 404
    assert gone.json()["error"].startswith("Job was not found")


def test_deploy_from_a_private_git_repository(server: Server, tmp_path: Path) -> None:
    server.login()
    files = {
        f"sample/python-primer/{path.name}": path.read_text()
        for path in PRIMER_DIR.iterdir()
        if path.is_file()
    }
    with GitServer(tmp_path / "git", username="deployer", password="s3cret-git-token") as git:
        remote = git.create_repo("jobs.git", files)
        manifest = primer_manifest(git={"remote": remote, "directory": "sample/python-primer"})
        refused = server.deploy({"manifest": manifest})
        assert refused["status"] == "failed"
        assert "racetrack set credentials" in refused["error"]

        record = server.deploy(
            {
                "manifest": manifest,
                "git_credentials": {"username": "deployer", "password": "s3cret-git-token"},
                "secret_vars": {"runtime_env": {"API_KEY": "runtime-secret-value"}},
            }
        )
    assert record["status"] == "done", record
    assert server.call("primer", "latest", {"number": 7907}).json() is True

    # Neither the git token nor the runtime secret is in any answer, log or the database file.
    seen = json.dumps(server.api("GET", "/deploy").json()) + json.dumps(
        server.api("GET", "/job").json()
    )
    seen += server.api("GET", "/job/primer/0.0.1/build-logs").json()["logs"]
    seen += server.log()
    for path in server.home.rglob("*"):
        if path.is_file() and path.suffix in {".db", ".db-wal", ".json", ".log"}:
            seen += path.read_bytes().decode("latin-1")
    assert "s3cret-git-token" not in seen
    assert "runtime-secret-value" not in seen


def test_calls_keep_succeeding_during_a_redeploy(server: Server) -> None:
    server.login()
    assert deploy_primer(server)["status"] == "done"
    results: list[int] = []
    done = threading.Event()

    def call_repeatedly() -> None:
        with httpx.Client(timeout=30) as client:
            while not done.is_set() or len(results) < 200:
                answer = client.post(
                    f"{server.pub}/job/primer/latest/api/v1/perform",
                    json={"number": 7907},
                    headers={"X-Racetrack-Auth": server.token},
                )
                results.append(answer.status_code if answer.json() is True else -1)

    callers = [threading.Thread(target=call_repeatedly) for _ in range(4)]
    for caller in callers:
        caller.start()
    try:
        record = deploy_primer(server, force=True)
        time.sleep(3)  # the old replica retires after Pub's cache moved on
    finally:
        done.set()
        for caller in callers:
            caller.join()
    assert record["status"] == "done", record
    assert len(results) >= 200
    assert set(results) == {200}, f"{len([r for r in results if r != 200])} calls failed"


def test_a_killed_job_and_a_restarted_server_both_leave_the_job_callable(server: Server) -> None:
    server.login()
    assert deploy_primer(server)["status"] == "done"

    os.kill(replica_pid(server), signal.SIGKILL)
    deadline = time.monotonic() + 30
    answer = None
    while time.monotonic() < deadline:
        answer = server.call("primer", "latest", {"number": 7907})
        if answer.status_code == 200:
            break
        time.sleep(0.2)
    assert answer is not None
    assert answer.status_code == 200, answer.text

    server.stop()
    server.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = server.call("primer", "latest", {"number": 7907})
        if answer.status_code == 200:
            break
        time.sleep(0.2)
    assert answer.status_code == 200, f"{answer.text}\n{server.log()}"
    assert answer.json() is True


def test_a_failed_redeploy_keeps_the_previous_version_serving(
    server: Server, tmp_path: Path
) -> None:
    server.login()
    assert deploy_primer(server)["status"] == "done"
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "entrypoint.py").write_text("raise RuntimeError('this job cannot start')\n")
    (broken / "job.yaml").write_text((PRIMER_DIR / "job.yaml").read_text())
    record = server.deploy(
        {"manifest": primer_manifest(), "build_context": pack_build_context(broken), "force": True}
    )
    assert record["status"] == "failed"
    assert "this job cannot start" in server.api(
        "GET", f"/deploy/{record['id']}/build-logs"
    ).json()["logs"] + (record["error"] or "")
    assert server.call("primer", "latest", {"number": 7907}).json() is True


def replica_pid(server: Server) -> int:
    job = server.api("GET", "/job/primer/latest").json()
    port = int(job["internal_name"].rsplit(":", 1)[1])
    for record in (server.home / "targets" / "local" / "replicas").glob("*.json"):
        data = json.loads(record.read_text())
        if data["port"] == port:
            pid: int = data["pid"]
            return pid
    raise AssertionError(f"no pid file for port {port}")
