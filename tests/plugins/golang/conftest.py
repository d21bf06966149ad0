"""Fixtures for the golang job type's tests: the host's ``go``, a build cache, job processes.

Go builds are slow the first time (the standard library is compiled for a static binary), so
``GOCACHE`` points at a folder outside the clone that survives between runs. Tests that need
``go`` skip without it, except in CI (where a skip fails the run).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from racetrack_core.infrastructure import JobSpec
from racetrack_core.recipes import Recipes
from racetrack_core.registry import JobType
from racetrack_plugins.golang import EXTRA_SCHEMA, VERSION
from racetrack_plugins.golang.process import GolangProcessRecipe

REPO_ROOT = Path(__file__).resolve().parents[3]
SAMPLE = REPO_ROOT / "sample" / "golang-primer"
VENDORED_SAMPLE = REPO_ROOT / "sample" / "golang-vendored"
GO_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "racetrack-tests"


@pytest.fixture(scope="session", autouse=True)
def go_build_cache() -> Iterator[Path]:
    """``GOCACHE`` (and the module cache) outside the clone, kept between runs."""
    cache = Path(os.environ.get("GOCACHE") or GO_CACHE / "go-build")
    cache.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GOCACHE", str(cache))
        patch.setenv("GOMODCACHE", str(GO_CACHE / "go-mod"))
        yield cache


@pytest.fixture(scope="session")
def go() -> str:
    found = shutil.which("go")
    if found is None:
        pytest.skip("go is not installed (Debian package golang-go)")
    return found


def job_spec(
    workspace: Path,
    tmp_path: Path,
    *,
    manifest: Mapping[str, object] | None = None,
    build_env: Mapping[str, str] | None = None,
) -> JobSpec:
    """A JobSpec of the golang job in ``workspace``."""
    job_type = JobType(
        "golang", VERSION, EXTRA_SCHEMA, recipes=Recipes(process=GolangProcessRecipe())
    )
    return JobSpec(
        name="golang-primer",
        version="0.0.1",
        manifest=manifest or {"name": "golang-primer", "jobtype": "golang:latest"},
        job_type=job_type,
        workspace=workspace,
        env={},
        deployment_id="d1",
        deployment_timestamp=1700000123,
        state_dir=tmp_path / "state",
        build_env=build_env or {},
    )


BuildJob = Callable[..., Path]


@pytest.fixture
def build_job(go: str, tmp_path: Path) -> BuildJob:
    """Build a job folder with the local recipe; return the environment folder."""

    def build(workspace: Path, **build_env: str) -> Path:
        env_dir = tmp_path / f"env-{len(list(tmp_path.glob('env-*')))}"
        env_dir.mkdir()
        GolangProcessRecipe().build(
            job_spec(workspace, tmp_path, build_env=build_env), env_dir, print
        )
        return env_dir

    return build


WriteModule = Callable[..., Path]


@pytest.fixture
def write_module(tmp_path: Path) -> WriteModule:
    """A Go module in a new folder: ``go.mod`` and the given files (dedented)."""

    def write(go_line: str = "go 1.19", folder: str = "job", **files: str) -> Path:
        root = tmp_path / folder
        root.mkdir()
        (root / "go.mod").write_text(f"module example.com/job\n\n{go_line}\n")
        for name, content in files.items():
            path = root / name.replace("__", "/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(content).lstrip())
        return root

    return write


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningJob:
    client: httpx.Client
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def running_job(env_dir: Path, workspace: Path, log: Path, **env: str) -> Iterator[RunningJob]:
    """Run a built job (as the local target does) until the block ends."""
    port = free_port()
    command = GolangProcessRecipe().command(job_spec(workspace, log.parent), env_dir, port)
    environ = {
        "PATH": os.environ["PATH"],
        "JOB_NAME": "golang-primer",
        "JOB_VERSION": "0.0.1",
        "JOB_DEPLOYMENT_TIMESTAMP": "1700000123",
        "JOB_PORT": str(port),
        **env,
    }
    with log.open("w") as output:
        process = subprocess.Popen(
            command, cwd=workspace, env=environ, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + 20
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    if client.get("/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.05)
            yield RunningJob(client, process, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
