"""Fixtures for the local target's tests: a tiny recipe whose job is a stdlib HTTP server.

Every process is real. The ``jobs`` fixture makes specs and drivers on one home folder, closes
the drivers at teardown and then kills, by pid, any process still named in a pid file there.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from racetrack_core.infrastructure import BuildLog, JobSpec, TargetContext
from racetrack_core.recipes import ProcessRecipe, Recipes
from racetrack_core.registry import JobType
from racetrack_plugins.local_infra import LocalDriver

SERVER = textwrap.dedent(
    """
    import http.server, json, os, signal, sys

    if os.environ.get("CRASH"):
        print("boom: crashing on purpose", flush=True)
        sys.exit(3)
    if os.environ.get("IGNORE_TERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    port = int(os.environ["JOB_PORT"])


    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            timestamp = int(os.environ["JOB_DEPLOYMENT_TIMESTAMP"])
            answers = {
                "/live": {"live": True, "deployment_timestamp": timestamp},
                "/ready": {"ready": True},
                "/pid": {"pid": os.getpid()},
                "/env": sorted(os.environ),
            }
            body = json.dumps(answers.get(self.path, {"error": "not found"})).encode()
            self.send_response(200 if self.path in answers else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            print("request", self.path, flush=True)


    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("serving on 127.0.0.1:%d" % port, flush=True)
    server.serve_forever()
    """
)

#: Settings that keep the tests fast: short backoff, frequent supervision, no drain.
FAST_SETTINGS: dict[str, Any] = {
    "drain_seconds": 0.0,
    "stop_grace_seconds": 2.0,
    "restart_backoff_seconds": 0.05,
    "restart_backoff_max_seconds": 0.2,
    "crash_limit": 3,
    "crash_window_seconds": 60.0,
    "supervise_interval_seconds": 0.05,
}


class ScriptRecipe:
    """A ProcessRecipe whose environment is a folder holding ``server.py``.

    The manifest steers it: ``variant`` changes the key, ``build_seconds`` slows the build,
    ``fail_build`` makes it fail after writing some output.
    """

    def __init__(self) -> None:
        self.builds = 0
        self._lock = threading.Lock()

    def environment_key(self, spec: JobSpec) -> str:
        digest = hashlib.sha256(SERVER.encode()).hexdigest()[:12]
        return f"script-{spec.manifest.get('variant', 'base')}-{digest}"

    def build(self, spec: JobSpec, env_dir: Path, log: BuildLog) -> None:
        with self._lock:
            self.builds += 1
        log("writing server.py")
        time.sleep(float(spec.manifest.get("build_seconds", 0)))
        (env_dir / "server.py").write_text(SERVER)
        if spec.manifest.get("fail_build"):
            log("compiling: error: no module named 'frobnicate'")
            raise RuntimeError("the compiler gave up")

    def command(self, spec: JobSpec, env_dir: Path, port: int) -> list[str]:
        return [sys.executable, "-u", str(env_dir / "server.py")]


def make_spec(
    recipe: ProcessRecipe,
    root: Path,
    *,
    name: str = "hello",
    version: str = "1.0.0",
    timestamp: int = 1_700_000_000,
    env: Mapping[str, str] | None = None,
    manifest: Mapping[str, Any] | None = None,
    no_cache: bool = False,
) -> JobSpec:
    """A JobSpec of the script job, with its workspace and state folder under ``root``.

    As in Lifecycle, each deployment (each timestamp) has a state folder of its own.
    """
    workspace = root / "workspace"
    workspace.mkdir(parents=True, exist_ok=True)
    return JobSpec(
        name=name,
        version=version,
        manifest=dict(manifest or {}),
        job_type=JobType(name="script", version="1.0.0", recipes=Recipes(process=recipe)),
        workspace=workspace,
        env={
            "JOB_NAME": name,
            "JOB_VERSION": version,
            "JOB_DEPLOYMENT_TIMESTAMP": str(timestamp),
            **(env or {}),
        },
        deployment_id=f"deployment-{timestamp}",
        deployment_timestamp=timestamp,
        state_dir=root / "state" / name / version / str(timestamp),
        no_cache=no_cache,
    )


class Jobs:
    """Specs, drivers and HTTP helpers around one home folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.recipe = ScriptRecipe()
        self.build_log: list[str] = []
        self._drivers: list[LocalDriver] = []
        # No keep-alive: replicas are killed under the tests' feet. No proxy: loopback only.
        self.http = httpx.Client(
            timeout=2, trust_env=False, limits=httpx.Limits(max_keepalive_connections=0)
        )

    def driver(self, **settings: Any) -> LocalDriver:
        driver = LocalDriver(TargetContext(self.home, {**FAST_SETTINGS, **settings}))
        self._drivers.append(driver)
        return driver

    def spec(self, **fields: Any) -> JobSpec:
        return make_spec(self.recipe, self.root, **fields)

    def started(self, driver: LocalDriver, spec: JobSpec) -> str:
        """Prepare and start ``spec``, wait until it answers; return its URL."""
        driver.prepare(spec, self.build_log.append)
        url = driver.start(spec).url
        self.wait_until(lambda: self.answers(url), what=f"{url} to answer")
        return url

    def get(self, url: str, path: str) -> Any:
        response = self.http.get(url + path)
        response.raise_for_status()
        return response.json()

    def answers(self, url: str) -> bool:
        try:
            return bool(self.get(url, "/live")["live"])
        except httpx.HTTPError:
            return False

    def wait_until(self, condition: Callable[[], object], what: str, timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.02)

    def close(self) -> None:
        for driver in self._drivers:
            driver.close()
        kill_recorded_processes(self.home)
        self.http.close()


def kill_recorded_processes(home: Path) -> None:
    """SIGKILL the process group of every live process named in a pid file under ``home``."""
    for path in (home / "replicas").glob("*.json"):
        record = json.loads(path.read_text())
        pid, started = record["pid"], record["started"]
        if process_start_time(pid) == started:
            os.killpg(pid, signal.SIGKILL)
            while process_start_time(pid) == started:
                time.sleep(0.01)


def process_start_time(pid: int) -> int | None:
    """The start time of a live (not zombie) process, read independently of the driver."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return None if fields[0] in {"Z", "X"} else int(fields[19])


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[Jobs]:
    harness = Jobs(tmp_path)
    yield harness
    harness.close()
