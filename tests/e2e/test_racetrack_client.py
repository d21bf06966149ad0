"""The existing ``racetrack-client`` package from PyPI against a real ``racetrack up``.

People already use ``racetrack-client`` 2.35.1 (the newest release; its command is also called
``racetrack``). It is installed by uv into a virtual environment of its own, kept under pytest's
cache folder so that later runs reuse it, and it runs with ``HOME`` pointed at a temporary
folder, so its ``~/.racetrack/config.yaml`` is never the real user's. One server (SQLite, the
local target, free 127.0.0.1 ports, a temporary home) serves the whole module.

The client is driven as a person would drive it: command lines in bash, and a terminal (a
pseudo-terminal from the stdlib ``pty`` module) for the hidden password prompt and for the
deploy progress, which the client prints only when its output is a terminal. Without a
terminal it logs errors only, to standard output, and exits with 70 (``EX_SOFTWARE``) on any
error.
"""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from ruamel.yaml import YAML
from uv import find_uv_bin

from racetrack_core.testing.server import QUICK_ENV, RacetrackServer
from tests.e2e.test_up import broken_job

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

#: The newest release of the original client (``uv pip install 'racetrack-client>2.35.1'``
#: finds none).
CLIENT_REQUIREMENT = "racetrack-client==2.35.1"
CLIENT_VERSION_LINE = "racetrack-client version 2.35.1"
ADMIN_PASSWORD = "an admin password for the racetrack-client tests"
ROOT = Path(__file__).resolve().parents[2]
PRIMER_DIR = ROOT / "sample" / "python-primer"
#: The client's exit code for any error (``os.EX_SOFTWARE``).
CLIENT_ERROR = 70
ANSI = re.compile(r"\x1b\[[0-9;]*m")


# --- the client, in a virtual environment of its own -----------------------------------------


def _installed(venv: Path) -> bool:
    racetrack = venv / "bin" / "racetrack"
    if not racetrack.exists():
        return False
    done = subprocess.run(
        [str(racetrack), "version"], capture_output=True, text=True, check=False, timeout=60
    )
    return done.returncode == 0 and CLIENT_VERSION_LINE in done.stdout


@pytest.fixture(scope="session")
def client_bin(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` folder of a virtual environment holding ``racetrack-client``.

    Kept in pytest's cache folder (``.pytest_cache/d/racetrack-client``) between runs; in a
    temporary folder when the cache plugin is off. A failure to install fails the test with
    uv's own message: CI must not skip this test.
    """
    cache = getattr(request.config, "cache", None)
    base = cache.mkdir("racetrack-client") if cache is not None else None
    if base is None:
        base = tmp_path_factory.mktemp("racetrack-client")
    venv = base / CLIENT_REQUIREMENT.replace("==", "-")
    if _installed(venv):
        return venv / "bin"
    shutil.rmtree(venv, ignore_errors=True)
    uv = find_uv_bin()
    steps = [
        [uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
        [uv, "pip", "install", "--quiet", "--python", f"{venv}/bin/python", CLIENT_REQUIREMENT],
    ]
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, check=False, timeout=300)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`{' '.join(step)}` took over 300 s: is the package index reachable?")
        if done.returncode != 0:
            pytest.fail(
                f"could not install {CLIENT_REQUIREMENT} from the package index (is it "
                f"reachable?): `{' '.join(step)}` exited with {done.returncode}:\n"
                f"{done.stderr}{done.stdout}"
            )
    assert _installed(venv), f"{venv}: `racetrack version` does not say {CLIENT_VERSION_LINE}"
    return venv / "bin"


# --- the server ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RacetrackServer]:
    home = tmp_path_factory.mktemp("racetrack-up") / "home"
    with RacetrackServer(home, admin_password=ADMIN_PASSWORD, env=QUICK_ENV) as running:
        yield running


@pytest.fixture
def primer_dir(tmp_path: Path) -> Path:
    """A copy of ``sample/python-primer``: its ``owner_email`` is ``sample@example.com``, so
    the client sends it as a local build context to a localhost remote."""
    copy = tmp_path / "python-primer"
    shutil.copytree(PRIMER_DIR, copy)
    return copy


@pytest.fixture
def primer(server: RacetrackServer) -> None:
    """``primer`` 0.0.1 deployed (through the API, so that a failure here is an error)."""
    server.login()
    record = server.deploy_folder(PRIMER_DIR, force=True)
    assert record["status"] == "done", f"{record}\n{server.log()}"


# --- driving the client -----------------------------------------------------------------------


def client_env(client_bin: Path, home: Path) -> dict[str, str]:
    """The environment of a shell whose ``racetrack`` is the original client."""
    env = {
        **os.environ,
        "HOME": str(home),
        "PATH": f"{client_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
        "TERM": "dumb",
    }
    for name in ("RACETRACK_CONFIG_DIR", "VIRTUAL_ENV", "LOG_LEVEL", "LOG_STRUCTURED"):
        env.pop(name, None)
    return env


@dataclass
class Shell:
    """Runs command lines in bash with the original client first on PATH and its own HOME.

    Each line runs in a new session, without a controlling terminal: ``getpass`` then reads
    the password from standard input (with a ``GetPassWarning``), as it does in a pipeline.
    """

    client_bin: Path
    home: Path

    def __call__(
        self, line: str, cwd: Path = ROOT, stdin: str = ""
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", line],
            cwd=cwd,
            env=client_env(self.client_bin, self.home),
            input=stdin,
            capture_output=True,
            text=True,
            start_new_session=True,
            timeout=300,
            check=False,
        )

    @property
    def config(self) -> dict[str, object]:
        data: dict[str, object] = YAML(typ="safe").load(self.home / ".racetrack" / "config.yaml")
        return data


def in_terminal(
    argv: Sequence[str],
    env: dict[str, str],
    cwd: Path,
    answers: Sequence[tuple[str, str]] = (),
    timeout: float = 180,
) -> tuple[int, str]:
    """Run ``argv`` on a new pseudo-terminal, as a person at a terminal would.

    ``answers`` are (prompt, reply) pairs: each reply is typed once its prompt has appeared.
    Returns the exit code and everything the terminal showed, colours removed.
    """
    pid, master = pty.fork()
    if pid == 0:  # the child: the pty is its controlling terminal and its stdio
        try:
            os.chdir(cwd)
            os.execve(argv[0], list(argv), env)  # noqa: S606 (no shell, on purpose)
        finally:
            os._exit(127)
    shown = b""
    pending = list(answers)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            if pending and pending[0][0].encode() in shown:
                os.write(master, pending.pop(0)[1].encode())
        else:
            os.kill(pid, signal.SIGKILL)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(master)
    text = ANSI.sub("", shown.decode(errors="replace")).replace("\r\n", "\n")
    assert not pending, f"{argv}: the prompt {pending[0][0]!r} never appeared:\n{text}"
    return os.waitstatus_to_exitcode(status), text


# --- the tests --------------------------------------------------------------------------------


def test_the_seed_workflow_as_a_shell_session(
    server: RacetrackServer, client_bin: Path, primer_dir: Path, tmp_path: Path
) -> None:
    """``set remote``, ``login --username``, ``deploy``, ``list``, ``logs``, ``call``."""
    server.login()
    server.api("DELETE", "/job/primer/0.0.1")  # left by another test, if any
    sh = Shell(client_bin, tmp_path / "home")

    step = sh("racetrack version")
    assert step.stdout == f"{CLIENT_VERSION_LINE}\n", step.stderr

    step = sh(f"racetrack set remote {server.remote}")
    assert step.returncode == 0, step.stdout + step.stderr
    assert sh.config["lifecycle_url"] == server.remote

    step = sh("racetrack login --username admin", stdin=f"{ADMIN_PASSWORD}\n")
    assert step.returncode == 0, step.stdout + step.stderr
    assert "Enter your password for user admin" in step.stderr
    auths = sh.config["user_auths"]
    assert isinstance(auths, dict)
    assert list(auths) == [server.lifecycle]  # keyed by the resolved URL
    token = auths[server.lifecycle]
    assert server.api("GET", "/users/validate_user_auth", token=token).json()["username"] == "admin"
    assert (sh.home / ".racetrack" / "config.yaml").stat().st_mode & 0o777 == 0o600

    step = sh("racetrack deploy", cwd=primer_dir)
    assert step.returncode == 0, f"{step.stdout}{step.stderr}\n{server.log()}"
    [job] = server.api("GET", "/job", token=token).json()
    assert (job["name"], job["version"], job["status"]) == ("primer", "0.0.1", "running")
    assert job["deployed_by"] == "admin"

    step = sh("racetrack list")
    assert step.returncode == 0, step.stdout + step.stderr
    assert [line.split() for line in step.stdout.splitlines()] == [
        ["NAME", "VERSION", "STATUS"],
        ["primer", "0.0.1", "RUNNING"],
    ]
    step = sh("racetrack list -c all")
    assert f"{server.pub}/job/primer/0.0.1" in step.stdout, step.stdout + step.stderr

    step = sh("racetrack logs primer")
    assert step.returncode == 0, step.stdout + step.stderr
    assert "Uvicorn running" in step.stdout or "ready" in step.stdout

    step = sh("racetrack build-logs primer")
    assert step.returncode == 0, step.stdout + step.stderr
    assert "==> building" in step.stdout

    step = sh("""racetrack call primer /api/v1/perform '{"number": 7907}'""")
    assert (step.returncode, step.stdout) == (0, "true\n"), step.stderr
    step = sh("racetrack call primer /api/v1/perform 'number: 7906' --version 0.0.1")
    assert (step.returncode, step.stdout) == (0, "false\n"), step.stderr

    step = sh(
        f'curl -s -X POST "{server.pub}/job/primer/latest/api/v1/perform" '
        '-H "Content-Type: application/json" '
        '-H "X-Racetrack-Auth: $(racetrack get auth-token)" '
        """-d '{"number": 7907}'"""
    )
    assert step.stdout == "true", step.stderr

    step = sh("racetrack deploy", cwd=primer_dir)
    assert step.returncode == CLIENT_ERROR
    assert "Conflict: job primer 0.0.1 is already deployed" in step.stdout
    assert "--force" in step.stdout

    step = sh("racetrack delete primer --version 0.0.1")
    assert step.returncode == 0, step.stdout + step.stderr
    assert server.api("GET", "/job", token=token).json() == []
    step = sh("racetrack logs primer")
    assert step.returncode == CLIENT_ERROR
    assert "Not Found: no job named primer" in step.stdout


def test_login_with_a_token_and_the_account_errors(
    server: RacetrackServer, client_bin: Path, tmp_path: Path
) -> None:
    sh = Shell(client_bin, tmp_path / "home")
    assert sh(f"racetrack set remote {server.remote}").returncode == 0

    step = sh("racetrack list")
    assert step.returncode == CLIENT_ERROR
    assert f"missing auth token for {server.lifecycle}" in step.stdout

    step = sh("racetrack login --username admin", stdin="not the password\n")
    assert step.returncode == CLIENT_ERROR
    assert "Incorrect username or password" in step.stdout

    step = sh("racetrack login rt_not_a_token")
    assert step.returncode == CLIENT_ERROR
    assert "Invalid Auth Token" in step.stdout

    token = server.login()
    step = sh(f"racetrack login {token}")
    assert step.returncode == 0, step.stdout + step.stderr
    assert sh.config["user_auths"] == {server.lifecycle: token}
    assert sh("racetrack get auth-token").stdout == f"{token}\n"
    assert sh("racetrack get pub").stdout == f"{server.pub}\n"

    step = sh("racetrack plugin list --job-types")
    assert "python3:1.0.0" in step.stdout.splitlines(), step.stdout + step.stderr

    assert sh("racetrack logout").returncode == 0
    assert sh.config["user_auths"] == {}


def test_a_terminal_session(
    server: RacetrackServer, client_bin: Path, primer_dir: Path, tmp_path: Path
) -> None:
    """``login --username`` at a hidden prompt, and ``deploy``'s progress on a terminal."""
    env = client_env(client_bin, tmp_path / "home")
    racetrack = str(client_bin / "racetrack")

    code, shown = in_terminal([racetrack, "set", "remote", server.remote], env, tmp_path)
    assert code == 0, shown
    assert f'Current remote set to "{server.remote}"' in shown

    code, shown = in_terminal(
        [racetrack, "login", "--username", "admin"],
        env,
        tmp_path,
        answers=[("Enter your password for user admin: ", f"{ADMIN_PASSWORD}\n")],
    )
    assert code == 0, shown
    assert ADMIN_PASSWORD not in shown  # the prompt hides what is typed
    assert f"Logged as user admin to Racetrack: {server.lifecycle}" in shown

    code, shown = in_terminal([racetrack, "deploy", "--force"], env, primer_dir)
    assert code == 0, f"{shown}\n{server.log()}"
    assert f'deploying workspace "." (job primer v0.0.1) to {server.lifecycle}' in shown
    assert "using local build context due to deploying to localhost" in shown
    assert "deployment in progress: " in shown  # the `phase` of GET /deploy/{id}
    assert (
        f'Job "primer" has been deployed. Check out {server.pub}/job/primer/0.0.1 '
        "to access your Job"
    ) in shown

    code, shown = in_terminal([racetrack, "list"], env, tmp_path)
    assert code == 0, shown
    assert f"List of all jobs (1) deployed at {server.lifecycle}:" in shown
    assert ["primer", "0.0.1", "RUNNING"] in [line.split() for line in shown.splitlines()]

    broken = broken_job(tmp_path / "broken", "broken")
    code, shown = in_terminal([racetrack, "deploy"], env, broken)
    assert code == CLIENT_ERROR, shown
    assert "deployment error: " in shown
    assert "this job cannot start" in shown


def test_logs_follow_is_refused_because_it_would_need_logs_without_a_token(
    server: RacetrackServer, client_bin: Path, primer: None, tmp_path: Path
) -> None:
    """A deliberate difference from the original.

    racetrack-client 2.35.1 follows logs over Socket.IO at ``/lifecycle/socket.io/`` and sends
    no token or cookie there (the path and the missing auth are fixed in its
    ``client/logs.py``). Serving that would show any job's logs to anyone, so Racetrack does not:
    the endpoint does not exist, and our own ``racetrack logs --follow`` streams
    ``/api/v1/job/{name}/{version}/logs/stream`` with the caller's token instead.
    """
    sh = Shell(client_bin, tmp_path / "home")
    assert sh(f"racetrack set remote {server.remote}").returncode == 0
    assert sh(f"racetrack login {server.login()}").returncode == 0
    probe = httpx.get(
        f"http://127.0.0.1:{server.ports['lifecycle']}/lifecycle/socket.io/",
        params={"transport": "polling", "EIO": "4"},
    )
    assert probe.status_code == 404
    assert probe.json()["type"] == "NotFound"
    with subprocess.Popen(
        [str(client_bin / "racetrack"), "logs", "primer", "--follow", "--tail", "5"],
        env=client_env(client_bin, sh.home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as follower:
        try:
            output, _ = follower.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            follower.kill()
            output, _ = follower.communicate()
    job_log = server.api("GET", "/job/primer/latest/logs?tail=0").json()["logs"]
    shown = [line for line in job_log.splitlines() if line.strip() and line in output]
    assert shown == [], "no job log line reaches a client that sends no token"
