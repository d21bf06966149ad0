"""The user guide's workflow through the ``racetrack`` command, against a real ``racetrack up``.

One server (SQLite, the local target, free ports, a temporary home) serves the whole module.
The first test runs the guide's commands as a shell session would; the others use the same
server for the error paths a user meets.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from racetrack_cli.main import cli
from racetrack_core.testing.server import QUICK_ENV, RacetrackServer
from tests.e2e.test_up import broken_job

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ADMIN_PASSWORD = "an admin password for the cli tests"
ROOT = Path(__file__).resolve().parents[2]
PRIMER_DIR = ROOT / "sample" / "python-primer"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RacetrackServer]:
    home = tmp_path_factory.mktemp("server") / "home"
    with RacetrackServer(home, admin_password=ADMIN_PASSWORD, env=QUICK_ENV) as running:
        yield running


@dataclass
class Shell:
    """Runs command lines in bash, with this environment's ``racetrack`` first on PATH."""

    config_dir: Path

    def __call__(
        self, line: str, cwd: Path = ROOT, stdin: str = ""
    ) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "RACETRACK_CONFIG_DIR": str(self.config_dir),
        }
        return subprocess.run(
            ["bash", "-c", line], cwd=cwd, env=env, input=stdin, capture_output=True, text=True
        )


@dataclass
class Client:
    """Runs ``racetrack`` in-process with a configuration folder of its own."""

    config_dir: Path

    def __call__(self, *args: str, stdin: str | None = None) -> Result:
        return CliRunner().invoke(
            cli,
            list(args),
            prog_name="racetrack",
            input=stdin,
            env={"RACETRACK_CONFIG_DIR": str(self.config_dir)},
            catch_exceptions=False,
        )


def test_the_user_guide_as_a_shell_session(server: RacetrackServer, tmp_path: Path) -> None:
    sh = Shell(tmp_path / "config")
    step = sh(f"racetrack set remote {server.remote}")
    assert step.returncode == 0, step.stderr

    step = sh("racetrack login --username admin", stdin=f"{ADMIN_PASSWORD}\n")
    assert step.returncode == 0, step.stderr
    assert step.stderr == f"logged in to {server.lifecycle} as admin (staff)\n"

    step = sh("racetrack deploy", cwd=PRIMER_DIR)
    assert step.returncode == 0, f"{step.stderr}\n{server.log()}"
    assert step.stderr.startswith(
        f"deploying {PRIMER_DIR} (job primer v0.0.1) to {server.lifecycle}\n"
    )
    for phase in ("fetching source", "building", "waiting for live and ready"):
        assert f"  {phase} " in step.stderr
    assert step.stdout.splitlines() == [
        f"job primer 0.0.1 is deployed: {server.pub}/job/primer/0.0.1",
        """racetrack call primer /api/v1/perform '{"number": 7907}'""",
    ]

    step = sh("""racetrack call primer /api/v1/perform '{"number": 7907}'""")
    assert (step.returncode, step.stdout) == (0, "true\n"), step.stderr

    step = sh(
        f'curl -s -X POST "{server.pub}/job/primer/latest/api/v1/perform" '
        '-H "Content-Type: application/json" '
        '-H "X-Racetrack-Auth: $(racetrack get auth-token)" '
        """-d '{"number": 7907}'"""
    )
    assert step.stdout == "true", step.stderr

    step = sh("racetrack list")
    assert step.stdout.splitlines()[1].split() == ["primer", "0.0.1", "RUNNING"]

    step = sh("racetrack logs primer")
    assert step.returncode == 0, step.stderr
    assert "Uvicorn running" in step.stdout or "ready" in step.stdout

    step = sh("racetrack build-logs primer")
    assert "==> building" in step.stdout

    step = sh("racetrack delete primer --version 0.0.1")
    assert step.returncode == 0, step.stderr
    step = sh("racetrack list")
    assert step.stdout.splitlines() == ["NAME  VERSION  STATUS"]


@pytest.fixture(scope="module")
def client(server: RacetrackServer, tmp_path_factory: pytest.TempPathFactory) -> Client:
    """A client logged in as admin, with primer deployed."""
    rt = Client(tmp_path_factory.mktemp("client-config"))
    assert rt("set", "remote", server.remote).exit_code == 0
    assert rt("login", "--username", "admin", stdin=ADMIN_PASSWORD + "\n").exit_code == 0
    with contextlib.chdir(PRIMER_DIR):
        deployed = rt("deploy", "--force")
    assert deployed.exit_code == 0, f"{deployed.stderr}\n{server.log()}"
    return rt


def test_calls_and_their_errors(client: Client) -> None:
    assert client("call", "primer", "/api/v1/perform", '{"number": 7906}').stdout == "false\n"
    assert client("call", "primer", "/api/v1/perform", "number: 7907").stdout == "true\n"

    refused = client("call", "primer", "/api/v1/perform", '{"nmbr": 1}')
    assert refused.exit_code == 1
    [line] = refused.stderr.splitlines()
    assert "/pub/job/primer/0.0.1/api/v1/perform answered 400: " in line
    assert "nmbr" in line

    bad = client("call", "primer", "/api/v1/perform", '{"number": ')
    assert bad.exit_code == 2
    assert "neither JSON nor YAML" in bad.stderr

    unknown = client("call", "nope", "/api/v1/perform", "{}")
    assert (unknown.exit_code, unknown.stderr) == (1, "Error: no job named nope\n")


def test_listing_logs_and_plugins(client: Client, server: RacetrackServer) -> None:
    [job] = json.loads(client("list", "--json").stdout)
    assert job["pub_url"] == f"{server.pub}/job/primer/0.0.1"
    assert "local" in client("list", "-c", "infrastructure").stdout
    assert client("build-logs", "primer", "--tail", "1").stdout.strip()
    assert client("logs", "nope").stderr == "Error: no job named nope\n"
    assert "python3:1.0.0" in client("plugin", "list").stdout
    assert client("get", "pub").stdout == f"{server.pub}\n"


def test_logs_follow_until_ctrl_c(client: Client) -> None:
    env = {**os.environ, "RACETRACK_CONFIG_DIR": str(client.config_dir)}
    command = [sys.executable, "-m", "racetrack_cli", "logs", "primer", "--follow", "--tail", "1"]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) as follower:
        assert follower.stdout is not None
        first = follower.stdout.readline()
        assert first.strip()
        follower.send_signal(signal.SIGINT)
        assert follower.wait(timeout=10) == 0


def test_deploying_again_needs_force_and_a_failure_exits_3(client: Client, tmp_path: Path) -> None:
    with contextlib.chdir(PRIMER_DIR):
        again = client("deploy")
    assert again.exit_code == 1
    assert again.stderr.splitlines()[-1] == (
        "Error: job primer 0.0.1 is already deployed; deploy the next version, "
        "or use --force to redeploy this one"
    )

    broken = broken_job(tmp_path / "broken", "broken")
    failed = client("deploy", str(broken))
    assert failed.exit_code == 3, failed.stderr
    assert "last lines of the build log" in failed.stderr
    assert "this job cannot start" in failed.stderr
    last = failed.stderr.splitlines()[-1]
    assert last.startswith("Error: deployment of job broken 0.0.1 failed: ")


def test_move_to_an_unknown_target(client: Client) -> None:
    moved = client("move", "primer", "--version", "0.0.1", "--infrastructure", "moon")
    assert moved.exit_code == 1
    assert moved.stderr.splitlines()[-1] == (
        "Error: unknown infrastructure target 'moon'. Installed: docker, kubernetes, local"
    )


def test_account_errors(server: RacetrackServer, tmp_path: Path) -> None:
    rt = Client(tmp_path / "fresh")
    assert rt("set", "remote", server.remote).exit_code == 0
    listed = rt("list")
    assert (listed.exit_code, listed.stderr) == (
        1,
        f"Error: not logged in to {server.lifecycle}: run racetrack login --username <you>\n",
    )
    wrong = rt("login", "--username", "admin", stdin="not the password\n")
    assert (wrong.exit_code, wrong.stderr) == (
        1,
        f"Error: incorrect username or password ({server.lifecycle})\n",
    )
    token = rt("login", "rt_not_a_token")
    assert token.exit_code == 1
    assert token.stderr.startswith(f"Error: invalid auth token for {server.lifecycle}")
    assert rt("get", "auth-token").exit_code == 1


def test_delete(client: Client) -> None:
    deleted = client("delete", "primer", "--version", "0.0.1")
    assert deleted.exit_code == 0, deleted.stderr
    again = client("delete", "primer", "--version", "0.0.1")
    assert (again.exit_code, again.stderr) == (1, "Error: no job named primer\n")
