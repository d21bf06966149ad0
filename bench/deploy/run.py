"""Measure deploying ``sample/python-primer`` on the local target: time, phases and job memory.

Usage: ``.venv/bin/python bench/deploy/run.py``

Starts a real ``racetrack up`` in a fresh temporary home on free 127.0.0.1 ports and deploys the
primer once, to warm uv's cache (that deploy's time is reported, not judged), then stops it.
Then, in a second fresh home: a first deploy (a new environment, built by uv from its warm
cache), a redeploy of the unchanged source with ``force: true`` (the environment is reused),
the phase timings of both from the deployment records, and the idle RSS of the job's process
and its children (``VmRSS`` in ``/proc``). Prints a markdown report on stdout; progress on
stderr. Each server is stopped by its pid (SIGINT, as Ctrl-C, which stops its jobs); a job
process still alive after that is stopped by the pid in its replica record.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from uv import find_uv_bin

from racetrack_core.manifest import load_manifest
from racetrack_core.source import pack_build_context

ROOT = Path(__file__).resolve().parents[2]
PRIMER_DIR = ROOT / "sample" / "python-primer"
FIRST_DEPLOY_GOAL_S = 5.0
REDEPLOY_GOAL_S = 2.0
RSS_GOAL_MB = 60.0
#: How long the job is left alone before its memory is read.
IDLE_S = 2.0
POLL_S = 0.05


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def say(text: str) -> None:
    print(f"  {text}", file=sys.stderr)


@dataclass
class Deployment:
    seconds: float
    record: dict[str, Any]
    #: Wall-clock time at which the client saw the deployment finish: the last phase's end.
    seen_done_at: float

    def phase_seconds(self) -> dict[str, float]:
        phases = self.record["phases"]
        ends = [step["time"] for step in phases[1:]] + [self.seen_done_at]
        return {step["phase"]: end - step["time"] for step, end in zip(phases, ends, strict=True)}


class Server:
    """``racetrack up`` in ``home`` as a child process, driven over its HTTP API."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.password = secrets.token_urlsafe(16)
        self.ports = {name: free_port() for name in ("lifecycle", "pub", "dashboard")}
        self.api_url = f"http://127.0.0.1:{self.ports['lifecycle']}/lifecycle/api/v1"
        self.pub_url = f"http://127.0.0.1:{self.ports['pub']}/pub"
        self.log = home.parent / f"{home.name}-up.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(timeout=30)

    def start(self) -> float:
        """Start the server; the seconds until Lifecycle and Pub both answer."""
        ports = [f"--{name}-port={port}" for name, port in self.ports.items()]
        env = {**os.environ, "RACETRACK_ADMIN_PASSWORD": self.password}
        started = time.monotonic()
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "racetrack_cli", "up", "--home", str(self.home), *ports],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ROOT,
            )
        deadline = started + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"racetrack up exited:\n{self.log.read_text()}")
            try:
                if (
                    self.client.get(f"{self.pub_url}/live", timeout=1).status_code == 200
                    and self.client.get(f"{self.api_url}/info", timeout=1).status_code == 200
                ):
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(POLL_S)
        raise RuntimeError(f"racetrack up did not answer in 60 s:\n{self.log.read_text()}")

    def stop(self) -> None:
        """Ctrl-C the server (it stops its jobs); then stop any job it left, by its pid."""
        self.client.close()
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        for record in self.replica_records():
            pid = int(record["pid"])
            if _runs_in(pid, self.home):
                os.kill(pid, signal.SIGKILL)

    def login(self) -> None:
        answer = self.client.post(
            f"{self.api_url}/users/login", json={"username": "admin", "password": self.password}
        )
        answer.raise_for_status()
        self.client.headers["X-Racetrack-Auth"] = answer.json()["token"]

    def deploy(self, force: bool = False) -> Deployment:
        """Deploy the primer from an uploaded build context and wait until it is done."""
        body = {
            "manifest": load_manifest(PRIMER_DIR / "job.yaml").data,
            "build_context": pack_build_context(PRIMER_DIR),
            "force": force,
        }
        started = time.monotonic()
        answer = self.client.post(f"{self.api_url}/deploy", json=body)
        answer.raise_for_status()
        url = f"{self.api_url}/deploy/{answer.json()['id']}"
        while time.monotonic() - started < 180:
            record: dict[str, Any] = self.client.get(url).json()
            if record["status"] != "in_progress":
                seconds, seen_done_at = time.monotonic() - started, time.time()
                if record["status"] != "done":
                    raise RuntimeError(f"the deployment failed: {record['error']}")
                return Deployment(seconds, record, seen_done_at)
            time.sleep(POLL_S)
        raise RuntimeError(f"the deployment did not finish in 180 s:\n{self.log.read_text()}")

    def call_primer(self) -> None:
        answer = self.client.post(
            f"{self.pub_url}/job/primer/latest/api/v1/perform", json={"number": 7907}
        )
        if answer.status_code != 200 or answer.json() is not True:
            raise RuntimeError(f"the primer answered {answer.status_code}: {answer.text}")

    def job_pid(self) -> int:
        """The pid of the replica that serves the primer now (its port is in the job record)."""
        job = self.client.get(f"{self.api_url}/job/primer/latest").json()
        port = int(job["internal_name"].rsplit(":", 1)[1])
        for record in self.replica_records():
            if int(record["port"]) == port:
                return int(record["pid"])
        raise RuntimeError(f"no replica record for port {port}")

    def replica_records(self) -> list[dict[str, Any]]:
        folder = self.home / "targets" / "local" / "replicas"
        return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]


def _runs_in(pid: int, home: Path) -> bool:
    """Whether ``pid`` is alive and still a process started for ``home`` (not a reused pid)."""
    try:
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(home).encode() in command_line


def rss_bytes(pid: int, include_children: bool = True) -> int:
    """VmRSS of a process and, recursively, of its children."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        for line in Path(f"/proc/{current}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
        if not include_children:
            break
        for task in Path(f"/proc/{current}/task").iterdir():
            listing = task / "children"
            if listing.exists():
                pending += [int(child) for child in listing.read_text().split()]
    return total


def uv_cache_dir() -> Path:
    done = subprocess.run(
        [find_uv_bin(), "cache", "dir"], capture_output=True, text=True, check=True
    )
    return Path(done.stdout.strip())


@contextmanager
def running(home: Path) -> Iterator[tuple[Server, float]]:
    server = Server(home)
    try:
        startup = server.start()
        server.login()
        yield server, startup
    finally:
        server.stop()


@dataclass
class Results:
    cache_dir: Path
    cache_existed: bool
    warmup: Deployment
    startup_s: float
    first: Deployment
    redeploy: Deployment
    first_rss: int
    redeploy_rss: int
    server_rss: int
    load_before: str
    load_after: str


def measure() -> Results:
    cache_dir = uv_cache_dir()
    cache_existed = cache_dir.is_dir()
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
        with running(Path(tmp, "warmup-home")) as (server, _):
            warmup = server.deploy()
            say(f"warm-up deploy (fresh home, uv cache {cache_dir}): {warmup.seconds:.2f} s")
        with running(Path(tmp, "home")) as (server, startup):
            first = server.deploy()
            say(f"first deploy: {first.seconds:.2f} s")
            time.sleep(IDLE_S)
            first_rss = rss_bytes(server.job_pid())
            server.call_primer()
            redeploy = server.deploy(force=True)
            say(f"redeploy (force, same source): {redeploy.seconds:.2f} s")
            time.sleep(IDLE_S)
            redeploy_rss = rss_bytes(server.job_pid())
            assert server.process is not None
            server_rss = rss_bytes(server.process.pid, include_children=False)
            server.call_primer()
    return Results(
        cache_dir,
        cache_existed,
        warmup,
        startup,
        first,
        redeploy,
        first_rss,
        redeploy_rss,
        server_rss,
        load_before,
        load_average(),
    )


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def report(results: Results) -> str:
    first, redeploy = results.first.seconds, results.redeploy.seconds
    rss_mb = results.first_rss / 1e6
    lines = [
        "### Deploy time and memory (`sample/python-primer`, local target)",
        "",
        "| goal | measured | met |",
        "|---|---:|---|",
        f"| first deploy, warm uv cache < {FIRST_DEPLOY_GOAL_S:.0f} s | {first:.2f} s "
        f"| {met(first < FIRST_DEPLOY_GOAL_S)} |",
        f"| redeploy, same source, `force: true` < {REDEPLOY_GOAL_S:.0f} s | {redeploy:.2f} s "
        f"| {met(redeploy < REDEPLOY_GOAL_S)} |",
        f"| idle RSS of the job's process tree < {RSS_GOAL_MB:.0f} MB | {rss_mb:.1f} MB "
        f"| {met(rss_mb < RSS_GOAL_MB)} |",
        "",
        f"Warm-up: one throwaway deploy in another fresh home first, {results.warmup.seconds:.2f}"
        f" s (uv cache `{results.cache_dir}`, "
        f"{'already present' if results.cache_existed else 'created by it'}). "
        f"`racetrack up` answered in {results.startup_s:.2f} s; its own RSS, jobs excluded, "
        f"{results.server_rss / 1e6:.1f} MB. The job's RSS after the redeploy: "
        f"{results.redeploy_rss / 1e6:.1f} MB (read {IDLE_S:.0f} s after each deployment "
        "finished, before any call). Times are seen by a client polling every "
        f"{POLL_S * 1000:.0f} ms. Load average before: {results.load_before}; "
        f"after: {results.load_after}.",
        "",
        "| phase | first deploy s | redeploy s |",
        "|---|---:|---:|",
    ]
    first_phases = results.first.phase_seconds()
    redeploy_phases = results.redeploy.phase_seconds()
    for phase in dict.fromkeys([*first_phases, *redeploy_phases]):
        cells = [
            f"{phases[phase]:.2f}" if phase in phases else ""
            for phases in (first_phases, redeploy_phases)
        ]
        lines.append(f"| {phase} | {cells[0]} | {cells[1]} |")
    lines.append(f"| **total (client)** | {first:.2f} | {redeploy:.2f} |")
    return "\n".join(lines)


def main() -> None:
    if not shutil.which("git"):
        say("git is not installed; deploying from an uploaded context needs none")
    print(report(measure()))


if __name__ == "__main__":
    main()
