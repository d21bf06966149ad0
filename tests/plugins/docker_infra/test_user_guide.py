"""The user guide's whole workflow (``/work/shared/user-guide.md``, ``docs/user-guide.md``) on
``racetrack up --infra docker``, typed as a user types it: command lines in bash, with this
environment's ``racetrack`` first on ``PATH`` and a configuration folder of its own.

Each step is one of the guide's: set the remote and an alias for it, register, be activated by
an admin, log in with the password on standard input, look at the configuration, deploy the job
from its folder, call it through the CLI and through curl (with and without the token), list the
jobs, read the job's logs and build logs, redeploy (refused without ``--force``, then forced, the
job still answering), delete it, and log out. The server runs on free ports, never Racetrack's
defaults; its jobs run in containers that the module's ``jobs`` fixture removes afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from racetrack_core.testing.server import RacetrackServer
from racetrack_plugins.docker_infra.containers import home_digest
from tests.plugins.docker_infra.conftest import REPO, Jobs
from tests.plugins.docker_infra.test_server import PASSWORD, server

__all__ = ["server"]  # the module's `racetrack up --infra docker`, from test_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

BIN = Path(sys.executable).parent
USER = "jane@example.com"
USER_PASSWORD = "a user-guide password 7907"
UNAUTHENTICATED = "Unauthenticated: no header X-Racetrack-Auth: not logged in"


@dataclass
class Shell:
    """Runs command lines in bash, with this environment's ``racetrack`` first on PATH."""

    config_dir: Path

    def __call__(self, line: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "RACETRACK_CONFIG_DIR": str(self.config_dir),
        }
        return subprocess.run(
            ["bash", "-c", line],
            cwd=cwd,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )


@pytest.fixture
def primer_dir(tmp_path: Path) -> Path:
    """A copy of ``sample/python-primer``, the guide's job."""
    copy = tmp_path / "python-primer"
    shutil.copytree(REPO / "sample" / "python-primer", copy)
    return copy


def primer_containers(jobs: Jobs) -> list[Any]:
    """This server's containers of the job ``primer``."""
    labels = ["racetrack.job=primer", f"racetrack.home={home_digest(jobs.home)}"]
    return list(jobs.client.containers.list(all=True, filters={"label": labels}))


def test_the_user_guide_on_docker(
    server: RacetrackServer, jobs: Jobs, primer_dir: Path, tmp_path: Path
) -> None:
    home = tmp_path
    sh = Shell(tmp_path / "config")
    admin = Shell(tmp_path / "admin-config")

    # 2. Configure your racetrack client: a remote, an alias for it.
    step = sh(f"racetrack set remote {server.remote}", home)
    assert step.returncode == 0, step.stderr
    step = sh(f"racetrack set alias docker {server.remote}", home)
    assert step.returncode == 0, step.stderr
    step = sh("racetrack set remote docker", home)
    assert step.returncode == 0, step.stderr
    assert sh("racetrack get remote", home).stdout.strip() == server.lifecycle

    # Create an account; an admin activates it; log in with the password on standard input.
    step = sh(f"racetrack register --username {USER}", home, stdin=f"{USER_PASSWORD}\n")
    assert step.returncode == 0, step.stderr
    assert admin(f"racetrack set remote {server.remote}", home).returncode == 0
    step = admin("racetrack login --username admin", home, stdin=f"{PASSWORD}\n")
    assert step.returncode == 0, step.stderr
    step = admin(f"racetrack user activate {USER}", home)
    assert step.returncode == 0, step.stderr
    step = sh(f"racetrack login --username {USER}", home, stdin=f"{USER_PASSWORD}\n")
    assert step.returncode == 0, step.stderr
    assert step.stderr == f"logged in to {server.lifecycle} as {USER}\n"
    config = sh("racetrack get config", home)
    assert config.returncode == 0, config.stderr
    assert server.lifecycle in config.stdout
    assert USER_PASSWORD not in config.stdout

    # 7. Submit the job code, standing in its folder.
    step = sh("racetrack deploy", primer_dir)
    assert step.returncode == 0, f"{step.stderr}\n{server.log()[-6000:]}"
    assert f"job primer 0.0.1 is deployed: {server.pub}/job/primer/0.0.1" in step.stdout
    record = server.api("GET", "/job/primer/0.0.1").json()
    assert record["infrastructure_target"] == "docker"
    assert record["deployed_by"] == USER
    assert [c.labels["racetrack.version"] for c in primer_containers(jobs)] == ["0.0.1"]

    # 8. Call the job: through the CLI, through curl with the token, and without it.
    step = sh("""racetrack call primer /api/v1/perform '{"number": 7907}'""", home)
    assert (step.returncode, step.stdout) == (0, "true\n"), step.stderr
    curl = (
        f'curl -s -X POST "{server.pub}/job/primer/latest/api/v1/perform" '
        '-H "Content-Type: application/json" '
    )
    step = sh(curl + '-H "X-Racetrack-Auth: $(racetrack get auth-token)" '
              """-d '{"number": 7907}'""", home)  # fmt: skip
    assert step.stdout == "true", step.stderr
    step = sh(curl + """-d '{"numbers": [40, 2]}'""", home)
    assert UNAUTHENTICATED in step.stdout

    # FAQ: is it ready, and where are its errors? The list, the logs, the build logs.
    step = sh("racetrack list", home)
    assert step.stdout.splitlines()[1].split() == ["primer", "0.0.1", "RUNNING"], step.stdout
    step = sh("racetrack logs primer", home)
    assert step.returncode == 0, step.stderr
    assert "Uvicorn running on http://127.0.0.1" in step.stdout
    step = sh("racetrack build-logs primer", home)
    assert step.returncode == 0, step.stderr
    assert "==> building" in step.stdout

    # Redeploy: refused without --force, then a new deployment that keeps answering.
    step = sh("racetrack deploy", primer_dir)
    assert step.returncode != 0
    assert "--force" in step.stderr
    before = record["deployment_timestamp"]
    step = sh("racetrack deploy --force", primer_dir)
    assert step.returncode == 0, f"{step.stderr}\n{server.log()[-6000:]}"
    after = server.api("GET", "/job/primer/0.0.1").json()["deployment_timestamp"]
    assert after > before
    step = sh("""racetrack call primer /api/v1/perform '{"number": 7906}'""", home)
    assert (step.returncode, step.stdout) == (0, "false\n"), step.stderr

    # Delete: no job left, no container left.
    step = sh("racetrack delete primer --version 0.0.1", home)
    assert step.returncode == 0, step.stderr
    assert sh("racetrack list", home).stdout.splitlines() == ["NAME  VERSION  STATUS"]
    assert primer_containers(jobs) == []

    # Log out: the token is forgotten, and the next call says how to log in again.
    assert sh("racetrack logout", home).returncode == 0
    step = sh("racetrack list", home)
    assert step.returncode != 0
    assert "racetrack login" in step.stderr
