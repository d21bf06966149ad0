"""Plugins installed on a running server from a package index and from git, upgraded, refused
while jobs use them, and installed again by a server process that starts later.

The server runs in an environment of its own (a fresh virtual environment with Racetrack
installed), so that the plugins it installs do not reach the tests' environment. The index is a
folder of wheels, built here with hatchling, served as a PEP 503 simple index on 127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from racetrack_core.testing.gitserver import GitServer
from racetrack_core.testing.server import QUICK_ENV, RacetrackServer
from tests.e2e.plugin_index import build_wheel, simple_index, uv, write_plugin

TEST_DISTRIBUTIONS = ("racetrack-pyecho", "racetrack-pinbreaker", "racetrack-broken")

ENTRYPOINT = """class JobEntrypoint:
    def perform(self, text: str) -> str:
        return "{answer} " + text
"""


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The simple index's URL, serving racetrack-pyecho 0.1.0 (pyecho:1.0.0), 0.2.0 (1.0.0
    and 1.1.0) and 0.3.0 (1.1.0 only), a plugin that needs an older pluggy than Racetrack
    pins, and one that cannot be imported."""
    root = tmp_path_factory.mktemp("plugin-index")
    wheels = root / "wheels"
    for version, job_types in [
        ("0.1.0", ["1.0.0"]),
        ("0.2.0", ["1.0.0", "1.1.0"]),
        ("0.3.0", ["1.1.0"]),
    ]:
        build_wheel(write_plugin(root, version, job_types), wheels)
    pinbreaker = write_plugin(root, "0.1.0", name="racetrack-pinbreaker", dependencies=["pluggy<1"])
    build_wheel(pinbreaker, wheels)
    build_wheel(write_plugin(root, "0.1.0", name="racetrack-broken", broken=True), wheels)
    with simple_index(wheels) as url:
        yield url


@pytest.fixture
def racetrack_server_python(server_venv: Path) -> Iterator[str]:
    yield str(server_venv / "bin" / "python")
    python = str(server_venv / "bin" / "python")
    done = subprocess.run(
        [uv(), "pip", "uninstall", "--python", python, *TEST_DISTRIBUTIONS],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def racetrack_server_env(index: str) -> Mapping[str, str]:
    return {
        **QUICK_ENV,
        "RACETRACK_PLUGIN_INDEX_URL": index,
        "RACETRACK_SOURCE_ALLOWED_HOSTS": "127.0.0.1",
        "RACETRACK_PLUGIN_SYNC_INTERVAL": "0.5",
    }


def install(server: RacetrackServer, source: str, force: bool = False) -> Any:
    return server.api(
        "POST", "/plugin/install", json={"source": source, "force": force}, timeout=300
    )


def job_types(server: RacetrackServer) -> list[str]:
    return sorted(t for t in server.api("GET", "/plugin/job_type/versions").json() if "pyecho" in t)


def deploy_echo(server: RacetrackServer, folder: Path, version: str, job_type: str) -> None:
    job = folder / f"echo-{version}"
    job.mkdir()
    (job / "entrypoint.py").write_text(ENTRYPOINT.format(answer=job_type), encoding="utf-8")
    (job / "job.yaml").write_text(
        f"name: echo\nversion: {version}\nowner_email: someone@example.com\n"
        f"jobtype: {job_type}\njobtype_extra:\n  entrypoint_path: entrypoint.py\n"
        "  entrypoint_class: JobEntrypoint\n",
        encoding="utf-8",
    )
    record = server.deploy_folder(job)
    assert record["status"] == "done", (record.get("error"), server.log())


def test_install_upgrade_refuse_and_replicas(server: RacetrackServer, tmp_path: Path) -> None:
    server.login()
    answer = install(server, "racetrack-pyecho==0.1.0")
    assert answer.status_code == 200, answer.text
    assert [p["version"] for p in answer.json()["plugins"]] == ["0.1.0"]
    assert job_types(server) == ["pyecho:1.0.0"]

    deploy_echo(server, tmp_path, "1.0.0", "pyecho:1.0.0")
    assert server.call("echo", "1.0.0", {"text": "one"}).json() == "pyecho:1.0.0 one"

    answer = install(server, "racetrack-pyecho==0.2.0")
    assert answer.status_code == 200, answer.text
    assert job_types(server) == ["pyecho:1.0.0", "pyecho:1.1.0"]
    deploy_echo(server, tmp_path, "2.0.0", "pyecho:1.1.0")
    assert server.call("echo", "2.0.0", {"text": "two"}).json() == "pyecho:1.1.0 two"
    assert server.call("echo", "1.0.0", {"text": "one"}).json() == "pyecho:1.0.0 one"

    # 0.3.0 drops pyecho:1.0.0, which echo 1.0.0 runs on: refused, and 0.2.0 stays.
    answer = install(server, "racetrack-pyecho==0.3.0")
    assert answer.status_code == 409, answer.text
    assert "echo 1.0.0 (pyecho:1.0.0)" in answer.json()["error"]
    assert "--force" in answer.json()["error"]
    plugins = {p["name"]: p for p in server.api("GET", "/plugin").json()}
    assert plugins["pyecho"]["version"] == "0.2.0"
    assert job_types(server) == ["pyecho:1.0.0", "pyecho:1.1.0"]

    answer = server.api("DELETE", "/plugin/pyecho")
    assert answer.status_code == 409, answer.text
    error = answer.json()["error"]
    assert "echo 1.0.0 (pyecho:1.0.0)" in error
    assert "echo 2.0.0 (pyecho:1.1.0)" in error
    assert server.call("echo", "2.0.0", {"text": "still"}).json() == "pyecho:1.1.0 still"

    answer = install(server, "racetrack-pinbreaker==0.1.0")
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"].startswith(
        "plugin racetrack-pinbreaker==0.1.0 needs pluggy<1 but Racetrack pins pluggy=="
    )

    answer = install(server, "racetrack-broken")
    assert answer.status_code == 400, answer.text
    assert "could not be imported" in answer.json()["error"]
    assert "broken" not in {p["name"] for p in server.api("GET", "/plugin").json()}

    events = server.api("GET", "/audit/activity").json()["events"]
    installs = [event for event in events if event["kind"] == "plugin_installed"]
    assert [event["subject"] for event in installs] == [
        "racetrack-pyecho==0.2.0",
        "racetrack-pyecho==0.1.0",
    ]
    assert installs[0]["details"]["distributions"] == {"racetrack-pyecho": "0.2.0"}

    # A process that starts later, in an environment without the plugin, installs it again.
    server.stop()
    done = subprocess.run(
        [uv(), "pip", "uninstall", "--python", server.python, "racetrack-pyecho"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    server.start()
    assert job_types(server) == ["pyecho:1.0.0", "pyecho:1.1.0"]
    plugins = {p["name"]: p for p in server.api("GET", "/plugin").json()}
    assert plugins["pyecho"]["version"] == "0.2.0"


def test_forced_uninstall_names_the_jobs_and_later_processes_follow(
    server: RacetrackServer, tmp_path: Path
) -> None:
    def racetrack(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "RACETRACK_CONFIG_DIR": str(tmp_path / "config")}
        return subprocess.run(
            [sys.executable, "-m", "racetrack_cli", *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    server.login()
    assert racetrack("set", "remote", server.remote).returncode == 0
    login = racetrack("login", "--username", "admin", stdin=f"{server.admin_password}\n")
    assert login.returncode == 0, login.stderr
    done = racetrack("plugin", "install", "racetrack-pyecho==0.1.0")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "plugin pyecho 0.1.0: job types pyecho:1.0.0\n"
    deploy_echo(server, tmp_path, "1.0.0", "pyecho:1.0.0")

    done = racetrack("plugin", "uninstall", "pyecho")
    assert done.returncode == 1
    assert "echo 1.0.0 (pyecho:1.0.0)" in done.stderr
    assert job_types(server) == ["pyecho:1.0.0"]

    done = racetrack("plugin", "uninstall", "pyecho", "--force")
    assert done.returncode == 0, done.stderr
    assert "stop working: echo 1.0.0 (pyecho:1.0.0)" in done.stderr
    assert job_types(server) == []
    events = server.api("GET", "/audit/activity").json()["events"]
    [uninstalled] = [event for event in events if event["kind"] == "plugin_uninstalled"]
    assert uninstalled["actor"] == "admin"
    assert uninstalled["subject"] == "pyecho"
    assert uninstalled["details"] == {
        "distribution": "racetrack-pyecho",
        "forced_jobs": ["echo 1.0.0 (pyecho:1.0.0)"],
    }

    # Put it back behind the server's back: the next start removes it, as the record says.
    server.stop()
    index = server.env["RACETRACK_PLUGIN_INDEX_URL"]
    done = subprocess.run(
        [
            uv(),
            "pip",
            "install",
            "--python",
            server.python,
            "--index-url",
            index,
            "racetrack-pyecho==0.1.0",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    server.start()
    assert job_types(server) == []


def test_install_from_git(
    server: RacetrackServer, racetrack_git_server: GitServer, tmp_path: Path
) -> None:
    project = write_plugin(tmp_path, "0.4.0", ["1.4.0"], in_tree_backend=True)
    files = {
        str(path.relative_to(project)): path.read_text(encoding="utf-8")
        for path in project.rglob("*")
        if path.is_file()
    }
    url = racetrack_git_server.create_repo("pyecho.git", files)
    server.login()
    answer = install(server, f"git+{url}")
    assert answer.status_code == 200, answer.text
    assert job_types(server) == ["pyecho:1.4.0"]
    deploy_echo(server, tmp_path, "1.0.0", "pyecho:1.4.0")
    assert server.call("echo", "1.0.0", {"text": "git"}).json() == "pyecho:1.4.0 git"


def wait_for(check: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the other replica did not follow"
        time.sleep(0.3)


def test_a_running_replica_follows_installs_made_through_another(
    server: RacetrackServer, tmp_path: Path
) -> None:
    other = RacetrackServer(
        tmp_path / "other-home",
        server.database_url,
        admin_password=server.admin_password,
        env=server.env,
        python=server.python,
    )
    with other:
        server.login()
        other.login()
        assert job_types(other) == []
        assert install(server, "racetrack-pyecho==0.1.0").status_code == 200
        wait_for(lambda: job_types(other) == ["pyecho:1.0.0"])
        assert install(server, "racetrack-pyecho==0.2.0").status_code == 200
        wait_for(lambda: job_types(other) == ["pyecho:1.0.0", "pyecho:1.1.0"])
        deploy_echo(other, tmp_path, "1.1.0", "pyecho:1.1.0")
        assert other.call("echo", "1.1.0", {"text": "b"}).json() == "pyecho:1.1.0 b"
        assert server.api("DELETE", "/plugin/pyecho").status_code == 409
        assert server.api("DELETE", "/plugin/pyecho", params={"force": "true"}).status_code == 200
        wait_for(lambda: job_types(other) == [])


def test_git_credentials_stay_out_of_answers_logs_and_the_audit(
    server: RacetrackServer, racetrack_private_git_server: GitServer, tmp_path: Path
) -> None:
    git = racetrack_private_git_server
    assert git.password is not None
    project = write_plugin(tmp_path, "0.5.0", ["1.5.0"], in_tree_backend=True)
    files = {
        str(path.relative_to(project)): path.read_text(encoding="utf-8")
        for path in project.rglob("*")
        if path.is_file()
    }
    git.create_repo("pyecho.git", files)
    with_password = git.url.replace("://", f"://{git.username}:{git.password}@", 1)
    server.login()

    failed = install(server, f"git+{with_password}/missing.git")
    assert failed.status_code == 400, failed.text
    assert "://***@127.0.0.1" in failed.json()["error"]

    answer = install(server, f"git+{with_password}/pyecho.git")
    assert answer.status_code == 200, answer.text
    assert job_types(server) == ["pyecho:1.5.0"]
    events = server.api("GET", "/audit/activity").json()["events"]
    [installed] = [event for event in events if event["kind"] == "plugin_installed"]
    assert installed["subject"] == f"git+{git.url.replace('://', '://***@', 1)}/pyecho.git"

    shown = [failed.text, answer.text, server.api("GET", "/plugin").text, str(events)]
    shown.append(server.log())
    assert not [text for text in shown if git.password in text]
    if server.database_url.startswith("sqlite:///"):  # the source is kept sealed
        database = Path(server.database_url.removeprefix("sqlite:///"))
        stored = b"".join(path.read_bytes() for path in database.parent.glob(database.name + "*"))
        assert b"pyecho.git" in stored
        assert git.password.encode() not in stored
