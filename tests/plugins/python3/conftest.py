"""Fixtures for the python3 wrapper tests: an entrypoint in tmp_path, served in-process."""

from __future__ import annotations

import textwrap
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

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
