"""End to end: the golang sample deployed through a real ``racetrack up`` and called via Pub."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest

from racetrack_core.testing.server import QUICK_ENV, RacetrackServer

SAMPLE = Path(__file__).resolve().parents[2] / "sample" / "golang-primer"
VENDORED = SAMPLE.parent / "golang-vendored"
GO_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "racetrack-tests"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture
def racetrack_server_env() -> Mapping[str, str]:
    """The Go build cache outside the clone, kept between runs (the server passes it on)."""
    if shutil.which("go") is None:
        pytest.skip("go is not installed (Debian package golang-go)")
    cache = os.environ.get("GOCACHE") or str(GO_CACHE / "go-build")
    return {**QUICK_ENV, "GOCACHE": cache, "GOMODCACHE": str(GO_CACHE / "go-mod")}


def test_the_golang_sample_deploys_and_answers_through_pub(
    server: RacetrackServer, tmp_path: Path
) -> None:
    server.login()
    record = server.deploy_folder(SAMPLE)
    assert record["status"] == "done", record
    assert server.call("golang-primer", "latest", {"number": 7907}).json() is True
    assert server.call("golang-primer", "0.0.1", {"number": 7906}).json() is False
    refused = server.call("golang-primer", "latest", {"number": 7907}, token=None)
    assert refused.status_code == 401
    bad = server.call("golang-primer", "latest", [7907])
    assert bad.status_code == 400
    assert bad.json()["type"] == "ValueError"

    base = f"{server.pub}/job/golang-primer/latest"
    with httpx.Client(headers={"X-Racetrack-Auth": server.token}, timeout=10) as client:
        assert client.get(f"{base}/live").json()["live"] is True
        assert client.get(f"{base}/ready").json() == {"ready": True}
        assert client.get(f"{base}/health").json()["status"] == "pass"
        assert "requests_started_total" in client.get(f"{base}/metrics").text
        assert "swagger-ui-bundle.js" in client.get(f"{base}/docs").text
        assert client.get(f"{base}/swagger-ui/swagger-ui.css").status_code == 200
        assert "/api/v1/perform" in client.get(f"{base}/openapi.json").json()["paths"]
    build_log = server.api("GET", "/job/golang-primer/0.0.1/build-logs").json()["logs"]
    assert "'go 1.22.0' read as 'go 1.19'" in build_log

    # A redeploy under load loses no call: the new replica is ready before the old one stops,
    # and the old one lets its calls in flight finish on SIGTERM.
    results: list[int] = []
    done = threading.Event()

    def call_repeatedly() -> None:
        with httpx.Client(timeout=30, headers={"X-Racetrack-Auth": server.token}) as client:
            while not done.is_set() or len(results) < 200:
                answer = client.post(f"{base}/api/v1/perform", json={"number": 7907})
                results.append(answer.status_code if answer.json() is True else -1)

    callers = [threading.Thread(target=call_repeatedly) for _ in range(4)]
    for caller in callers:
        caller.start()
    try:
        redeployed = server.deploy_folder(SAMPLE, force=True)
        time.sleep(3)  # the old replica retires after Pub's cache moved on
    finally:
        done.set()
        for caller in callers:
            caller.join()
    assert redeployed["status"] == "done", redeployed
    assert set(results) == {200}, f"{len([r for r in results if r != 200])} calls failed"

    # A version that does not compile fails with the compiler's lines; 0.0.1 keeps serving.
    broken = tmp_path / "broken"
    shutil.copytree(SAMPLE, broken)
    source = (broken / "perform.go").read_text().replace("return IsPrime(", "return isPrime(")
    (broken / "perform.go").write_text(source)
    failed = server.deploy_folder(broken, manifest={"version": "0.0.2"})
    assert failed["status"] == "failed"
    assert "go build failed" in failed["error"]
    logs = server.api("GET", f"/deploy/{failed['id']}/build-logs").json()["logs"]
    assert "perform.go:19" in logs
    assert "undefined: isPrime" in logs
    assert server.call("golang-primer", "latest", {"number": 7907}).json() is True


def test_the_samples_deploy_from_the_cli(server: RacetrackServer, tmp_path: Path) -> None:
    def racetrack(
        *args: str, stdin: str = "", cwd: Path = VENDORED
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "RACETRACK_CONFIG_DIR": str(tmp_path / "config")}
        return subprocess.run(
            [sys.executable, "-m", "racetrack_cli", *args],
            cwd=cwd,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    assert racetrack("set", "remote", server.remote).returncode == 0
    login = racetrack("login", "--username", "admin", stdin=f"{server.admin_password}\n")
    assert login.returncode == 0, login.stderr
    deployed = racetrack("deploy")
    assert deployed.returncode == 0, f"{deployed.stderr}\n{server.log()}"
    called = racetrack("call", "golang-vendored", "/api/v1/perform", '{"name": "Ada"}')
    assert (called.returncode, called.stdout) == (0, '"Hello, Ada!"\n'), called.stderr

    deployed = racetrack("deploy", cwd=SAMPLE)
    assert deployed.returncode == 0, f"{deployed.stderr}\n{server.log()}"
    called = racetrack("call", "golang-primer", "/api/v1/perform", '{"number": 7907}')
    assert (called.returncode, called.stdout) == (0, "true\n"), called.stderr
