"""The real command: python -m racetrack_plugins.python3.wrapper serving sample/python-primer."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from racetrack_plugins.python3.wrapper import __main__ as command_module

REPO_ROOT = Path(__file__).resolve().parents[3]
PRIMER_DIR = REPO_ROOT / "sample" / "python-primer"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_the_wrapper_process_serves_the_primer_sample(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "JOB_NAME": "primer",
        "JOB_VERSION": "0.0.1",
        "JOB_DEPLOYMENT_TIMESTAMP": "1700000123",
        "JOB_PORT": str(port),
    }
    command = [
        sys.executable,
        "-m",
        "racetrack_plugins.python3.wrapper",
        "--entrypoint-path",
        "entrypoint.py",
        "--entrypoint-class",
        "JobEntrypoint",
        "--job-dir",
        str(PRIMER_DIR),
    ]
    log = (tmp_path / "wrapper.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=5) as client:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, (tmp_path / "wrapper.log").read_text()
                try:
                    if client.get("/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the wrapper did not become ready in 30 s"
                time.sleep(0.1)

            assert client.get("/live").json() == {"live": True, "deployment_timestamp": 1700000123}
            answer = client.post("/pub/job/primer/0.0.1/api/v1/perform", json={"number": 7907})
            assert (answer.status_code, answer.json()) == (200, True)
            assert client.post("/api/v1/perform", json={"number": 7907}).json() is True
            docs = client.get("/pub/job/primer/0.0.1/docs")
            assert 'src="swagger-ui/swagger-ui-bundle.js"' in docs.text
            asset = client.get("/pub/job/primer/0.0.1/swagger-ui/swagger-ui-bundle.js")
            assert asset.status_code == 200
            assert "SwaggerUIBundle" in asset.text
            document = client.get("/pub/job/primer/0.0.1/openapi.json").json()
            example = document["paths"]["/api/v1/perform"]["post"]["requestBody"]["content"]
            assert example["application/json"]["example"] == {"number": 7907}
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells why it stopped.
    assert process.returncode in (0, -15), (tmp_path / "wrapper.log").read_text()
    assert "Application shutdown complete" in (tmp_path / "wrapper.log").read_text()


def test_a_wrong_class_name_stops_the_command_with_one_line(tmp_path):
    command = [sys.executable, "-m", "racetrack_plugins.python3.wrapper"]
    command += ["--entrypoint-path", "entrypoint.py", "--entrypoint-class", "Nope"]
    command += ["--job-dir", str(PRIMER_DIR), "--port", str(free_port())]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: class 'Nope' not found in 'entrypoint.py'; classes there: JobEntrypoint"
    )


@pytest.mark.parametrize(("flags", "access_log"), [([], False), (["--access-log"], True)])
def test_the_access_log_is_off_unless_asked_for(monkeypatch, tmp_path, flags, access_log):
    (tmp_path / "entrypoint.py").write_text(
        "class Job:\n    def perform(self):\n        return 1\n"
    )
    monkeypatch.chdir(tmp_path)
    seen: dict[str, object] = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **options: seen.update(options))
    arguments = ["--entrypoint-path", "entrypoint.py", "--job-dir", str(tmp_path), *flags]
    assert command_module.main(arguments) == 0
    assert seen["access_log"] is access_log
    assert seen["log_level"] == logging.INFO


def test_the_listening_address_comes_from_job_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Images leave the address to JOB_HOST, so that a Kubernetes pod can listen on its own."""
    monkeypatch.delenv("JOB_HOST", raising=False)
    assert command_module.parse_arguments(["--entrypoint-path", "e.py"]).host == "127.0.0.1"
    monkeypatch.setenv("JOB_HOST", "127.0.0.2")
    assert command_module.parse_arguments(["--entrypoint-path", "e.py"]).host == "127.0.0.2"
    explicit = ["--entrypoint-path", "e.py", "--host", "127.0.0.1"]
    assert command_module.parse_arguments(explicit).host == "127.0.0.1"
