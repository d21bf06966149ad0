"""Faults injected into real processes: a server, its jobs, its database, its disk.

Each test starts its own ``racetrack up`` (:class:`RacetrackServer`) on free ports and does to
it what an outage would: SIGKILL by pid, a database cut off behind a relay or locked, a full
file system. What the suite holds to is in docs/reliability.md.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from racetrack_core.testing.server import QUICK_ENV, RacetrackServer, free_port

PRIMER_DIR = Path(__file__).resolve().parents[2] / "sample" / "python-primer"


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., RacetrackServer]]:
    """Make (not start) servers with homes in ``tmp_path``; each is stopped (or killed) after."""
    made: list[RacetrackServer] = []

    def make(
        name: str = "home", database_url: str | None = None, python: str | None = None, **env: str
    ) -> RacetrackServer:
        server = RacetrackServer(
            tmp_path / name, database_url, env={**QUICK_ENV, **env}, stop_timeout=60, python=python
        )
        made.append(server)
        return server

    yield make
    for server in made:
        try:
            server.stop()
        finally:
            if server.process is not None and server.process.poll() is None:
                server.process.kill()
            kill_processes_under(server.home)


def kill_processes_under(home: Path) -> None:
    """SIGKILL every process whose command line names ``home``: the jobs that a killed server
    started live on after it (that is the point of the fault), and a test must not leave them."""
    marker = str(home).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "cmdline").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue  # gone already, or not ours to read


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` every 0.2 s until it holds; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s")


@pytest.fixture
def standalone_pub(tmp_path: Path) -> Iterator[Callable[[RacetrackServer], StandalonePub]]:
    """Start ``racetrack serve pub`` in front of a started server's Lifecycle (as a Pub replica
    behind a load balancer would run); stopped after the test."""
    started: list[StandalonePub] = []

    def start(server: RacetrackServer) -> StandalonePub:
        pub = StandalonePub(server, tmp_path / f"pub-{len(started)}.log")
        started.append(pub)
        pub.start()
        return pub

    yield start
    for pub in started:
        pub.stop()


class StandalonePub:
    """``racetrack serve pub`` on a free port, reaching ``server``'s Lifecycle."""

    def __init__(self, server: RacetrackServer, log_path: Path) -> None:
        self.server = server
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/pub"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        server = self.server
        command = [
            server.python, "-m", "racetrack_cli", "serve", "pub",
            "--home", str(server.home), "--db", server.database_url,
            "--pub-port", str(self.port), "--lifecycle-port", str(server.ports["lifecycle"]),
        ]  # fmt: skip
        env = {**os.environ, **server.env}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)

        def live() -> bool:
            try:
                return httpx.get(f"{self.url}/live", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(live, 60, f"the standalone Pub answers (its log: {self.log_path})")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def rss_kib(pid: int) -> int:
    """The resident memory of process ``pid`` (VmRSS), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")
