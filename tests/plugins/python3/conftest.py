"""Fixtures for the python3 wrapper tests: an entrypoint in tmp_path, served in-process; or
served by a real process under our wrapper or the original one (``run_job``).

For the second kind, both wrappers run with one interpreter: a virtual environment, cached
outside the clone and keyed by its requirements, that holds the original wrapper
(``racetrack-job-runner``), Flask, FastAPI and our wrapper's dependencies. Our wrapper is put
first on ``PYTHONPATH`` as the package ``racetrack_job_wrapper`` (as a job's environment has
it), so that it shadows the original there.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import textwrap
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import httpx
import pytest
from uv import find_uv_bin

from racetrack_plugins.python3.wrapper import WrapperSettings, create_app

with warnings.catch_warnings():
    # starlette's TestClient prefers httpx2 and warns once, on import, when it finds httpx.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

WriteJob = Callable[..., Path]


@pytest.fixture
def write_job(tmp_path: Path) -> WriteJob:
    """Write ``entrypoint.py`` (dedented) and any other files into a job directory."""

    def write(source: str, **files: str) -> Path:
        (tmp_path / "entrypoint.py").write_text(textwrap.dedent(source))
        for name, content in files.items():
            path = tmp_path / name.replace("__", "/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        return tmp_path

    return write


@pytest.fixture
def serve() -> Callable[..., AbstractContextManager[TestClient]]:
    """``with serve(job_dir, entrypoint_class, wait=True, **settings) as client:``"""
    return serve_job


@contextmanager
def serve_job(
    job_dir: Path,
    entrypoint_class: str | None = None,
    *,
    wait: bool = True,
    **settings: object,
) -> Iterator[TestClient]:
    """Serve the job in-process; unless told not, wait until ``__init__`` finished or failed."""
    settings.setdefault("job_name", "primer")
    settings.setdefault("job_version", "1.2.3")
    app = create_app("entrypoint.py", entrypoint_class, job_dir, WrapperSettings(**settings))  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as client:
        if wait:
            wait_until_started(client)
        yield client


def wait_until_started(client: TestClient, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/ready").status_code == 200 or client.get("/live").status_code == 500:
            return
        time.sleep(0.01)
    raise AssertionError("the job's __init__ did not finish in time")


ORIGINAL_VERSION = "1.18.0"
WRAPPER_SOURCE = Path(__file__).resolve().parents[3] / "racetrack_plugins" / "python3" / "wrapper"
REFERENCE_REQUIREMENTS = (
    f"racetrack-job-runner=={ORIGINAL_VERSION}",
    "flask",
    f"swagger-ui-bundle=={metadata.version('swagger-ui-bundle')}",
)


def cache_root() -> Path:
    configured = os.environ.get("RACETRACK_TEST_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "racetrack-tests"


def reference_python() -> Path:
    """The cached environment's Python; built on first use (needs the package index)."""
    key = hashlib.sha256("\n".join(REFERENCE_REQUIREMENTS).encode()).hexdigest()[:16]
    env_dir = cache_root() / f"original-wrapper-{ORIGINAL_VERSION}-{key}"
    python = env_dir / "bin" / "python"
    if python.is_file():
        return python
    building = env_dir.with_name(env_dir.name + f".building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    uv = find_uv_bin()
    subprocess.run([uv, "venv", "--quiet", "--python", "python3", str(building)], check=True)
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(building / "bin" / "python"),
            *REFERENCE_REQUIREMENTS,
        ],
        check=True,
    )
    try:
        building.rename(env_dir)
    except OSError:  # another run finished first
        shutil.rmtree(building, ignore_errors=True)
    # A venv's scripts hold its path: use it only through its interpreter, which does not.
    return python


def copy_our_wrapper(destination: Path) -> Path:
    """Our wrapper as the standalone package ``racetrack_job_wrapper``; return its parent."""
    shutil.copytree(
        WRAPPER_SOURCE,
        destination / "racetrack_job_wrapper",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return destination


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningJob:
    client: httpx.Client
    log: Path
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def run_job_process(
    which: str,
    python: Path,
    job_dir: Path,
    *,
    ours_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    options: tuple[str, ...] = (),
    name: str = "adder",
    version: str = "1.0.0",
) -> Iterator[RunningJob]:
    """Serve ``job_dir/entrypoint.py`` under ``which`` wrapper (``ours`` or ``original``)."""
    port = free_port()
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "VIRTUAL_ENV"))
    }
    environ.update({"JOB_NAME": name, "JOB_VERSION": version, "JOB_PORT": str(port)})
    environ.update(env or {})
    if which == "ours":
        assert ours_path is not None
        environ["PYTHONPATH"] = str(ours_path)
        command = [
            str(python),
            "-m",
            "racetrack_job_wrapper",
            "--entrypoint-path",
            "entrypoint.py",
            "--job-dir",
            str(job_dir),
            "--port",
            str(port),
            *options,
        ]
    else:
        command = [
            str(python),
            "-m",
            "racetrack_job_wrapper",
            "run",
            "entrypoint.py",
            "--port",
            str(port),
        ]
    log = job_dir.parent / f"{job_dir.name}-{which}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=environ, cwd=job_dir, stdout=output, stderr=output)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20)
    running = RunningJob(client, log, process)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, running.log_text()
            try:
                if client.get("/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "not ready in 60 s:\n" + running.log_text()
            time.sleep(0.1)
        yield running
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def original_python() -> Path:
    """The Python of the cached environment with the original wrapper (built on first use)."""
    return reference_python()


@pytest.fixture(scope="session")
def ours_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding our wrapper as the package ``racetrack_job_wrapper``."""
    return copy_our_wrapper(tmp_path_factory.mktemp("ours"))


@pytest.fixture
def run_job() -> Callable[..., AbstractContextManager[RunningJob]]:
    """``with run_job("ours" | "original", python, job_dir, ours_path=..., env=...) as job:``"""
    return run_job_process
