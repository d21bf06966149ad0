"""Load on real processes: deployments at once, calls through Pub across redeploys, memory.

``racetrack up`` runs Lifecycle; the calls go through a Pub of its own (``racetrack serve
pub``), so that each process's memory is measured apart. The number of calls in the memory
test is ``RACETRACK_LOAD_CALLS`` (10,000 by default, as CI runs it; the figures in
docs/reliability.md are from the full form)::

    RACETRACK_LOAD_CALLS=100000 pytest tests/load -p no:cacheprovider -s

Each test prints its figures (``-s`` shows them).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from racetrack_core.testing.server import AUTH_HEADER, RacetrackServer
from tests.faults.conftest import PRIMER_DIR, StandalonePub, rss_kib
from tests.faults.jobs import job_folder

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

CALLS = int(os.environ.get("RACETRACK_LOAD_CALLS", "10000"))
CLIENTS = 50
DEPLOYMENTS_AT_ONCE = 20
RSS_GROWTH_GOAL_KIB = 20 * 1024


def deploy_body(folder: Path) -> dict[str, Any]:
    from racetrack_core.manifest import load_manifest
    from racetrack_core.source import pack_build_context

    manifest = load_manifest(folder / "job.yaml").data
    return {"manifest": manifest, "build_context": pack_build_context(folder)}


def test_twenty_deployments_requested_at_once_all_finish(
    make_server: Callable[..., RacetrackServer], tmp_path: Path
) -> None:
    server = make_server()
    server.start()
    server.login()
    bodies = [
        deploy_body(job_folder(tmp_path / f"job-{i}", "pass", name=f"load-{i}"))
        for i in range(DEPLOYMENTS_AT_ONCE)
    ]
    started = time.monotonic()
    with ThreadPoolExecutor(DEPLOYMENTS_AT_ONCE) as pool:
        records = list(pool.map(lambda body: server.deploy(body, timeout=600), bodies))
    took = time.monotonic() - started
    statuses = Counter(record["status"] for record in records)
    print(f"{DEPLOYMENTS_AT_ONCE} deployments at once: {dict(statuses)} in {took:.1f} s")
    assert statuses == {"done": DEPLOYMENTS_AT_ONCE}, [r["error"] for r in records]
    for i in range(DEPLOYMENTS_AT_ONCE):
        answer = server.call(f"load-{i}", "latest", {"number": 7907})
        assert answer.status_code == 200, answer.text
        assert answer.json() is True


class Callers:
    """``clients`` threads calling primer through ``pub`` until stopped, or ``calls`` in all."""

    def __init__(self, pub: str, token: str, clients: int, calls: int | None = None) -> None:
        self.url = f"{pub}/job/primer/latest/api/v1/perform"
        self.token = token
        self.remaining = calls
        self.results: Counter[str] = Counter()
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._call) for _ in range(clients)]

    def _take(self) -> bool:
        with self._lock:
            if self._stop.is_set():
                return False
            if self.remaining is None:
                return True
            if self.remaining <= 0:
                return False
            self.remaining -= 1
            return True

    def _call(self) -> None:
        with httpx.Client(timeout=60, headers={AUTH_HEADER: self.token}) as client:
            while self._take():
                try:
                    answer = client.post(self.url, json={"number": 7907})
                    ok = answer.status_code == 200 and answer.json() is True
                    outcome = "ok" if ok else f"{answer.status_code}: {answer.text[:200]}"
                except httpx.HTTPError as exc:
                    outcome = f"{type(exc).__name__}: {exc}"
                with self._lock:
                    self.results["ok" if outcome == "ok" else "failed"] += 1
                    if outcome != "ok" and len(self.failures) < 10:
                        self.failures.append(outcome)

    def start(self) -> Callers:
        for thread in self._threads:
            thread.start()
        return self

    def join(self, stop: bool = False) -> None:
        if stop:
            self._stop.set()
        for thread in self._threads:
            thread.join()


def test_fifty_clients_across_two_redeploys_and_a_new_version_lose_no_call(
    make_server: Callable[..., RacetrackServer],
    standalone_pub: Callable[[RacetrackServer], StandalonePub],
) -> None:
    server = make_server()
    server.start()
    server.login()
    assert server.deploy_folder(PRIMER_DIR)["status"] == "done"
    pub = standalone_pub(server)
    callers = Callers(pub.url, server.token, CLIENTS).start()
    started = time.monotonic()
    try:
        for changes in ({}, {}, {"version": "0.0.2"}):
            record = server.deploy_folder(PRIMER_DIR, manifest=changes, force=True)
            assert record["status"] == "done", record
            time.sleep(3)  # calls go on while the replaced replica retires
    finally:
        callers.join(stop=True)
    took = time.monotonic() - started
    assert server.api("GET", "/job/primer/latest").json()["version"] == "0.0.2"
    print(
        f"{CLIENTS} clients across 2 redeploys and a new version: {dict(callers.results)} "
        f"in {took:.1f} s; failures: {callers.failures}"
    )
    assert callers.results["ok"] > 500
    assert callers.results["failed"] == 0, callers.failures


def test_memory_of_lifecycle_and_pub_over_many_calls(
    make_server: Callable[..., RacetrackServer],
    standalone_pub: Callable[[RacetrackServer], StandalonePub],
) -> None:
    server = make_server()
    server.start()
    server.login()
    assert server.deploy_folder(PRIMER_DIR)["status"] == "done"
    pub = standalone_pub(server)
    assert server.process is not None
    assert pub.process is not None
    warm_up = Callers(pub.url, server.token, CLIENTS, calls=2000).start()
    warm_up.join()
    assert warm_up.results["failed"] == 0, warm_up.failures
    before = {"lifecycle": rss_kib(server.process.pid), "pub": rss_kib(pub.process.pid)}

    callers = Callers(pub.url, server.token, CLIENTS, calls=CALLS)
    started = time.monotonic()
    callers.start().join()
    took = time.monotonic() - started
    after = {"lifecycle": rss_kib(server.process.pid), "pub": rss_kib(pub.process.pid)}
    growth = {name: after[name] - before[name] for name in before}
    print(
        f"{CALLS} calls by {CLIENTS} clients in {took:.1f} s ({CALLS / took:.0f}/s): "
        f"{dict(callers.results)}; RSS KiB before {before}, after {after}, growth {growth}"
    )
    assert callers.results == {"ok": CALLS}, callers.failures
    for name, kib in growth.items():
        assert kib < RSS_GROWTH_GOAL_KIB, f"{name} grew by {kib} KiB over {CALLS} calls"
