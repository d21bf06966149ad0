"""End to end on ``racetrack up``: a new person's account, an ESC's grant, and the CLI path.

A person registers (inactive), is refused until a staff member activates the account, logs in,
deploys a family of their own and calls it through Pub; another user may call it but not delete
it. An external service consumer with ``call_job`` on one family calls it and is refused on
another, and its revoked token stops working within Pub's cache time. The same person's path
through the ``racetrack`` command ends in a call. Real server, real job processes, on SQLite
and on PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from racetrack_core.testing.server import RacetrackServer
from tests.e2e.test_up import PRIMER_DIR, deploy_primer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

JANE = "jane@example.com"
JOHN = "john@example.com"
PASSWORD = "correct horse battery staple"
#: Pub keeps permission answers for 1 s in these tests (RACETRACK_PUB_AUTH_CACHE_TTL); a
#: revoked token must stop working within that, plus the time a call takes.
REVOCATION_BOUND = 3.0
BIN = Path(sys.executable).parent


def register(server: RacetrackServer, username: str) -> httpx.Response:
    return httpx.post(
        f"{server.lifecycle}/api/v1/users/register",
        json={"username": username, "password": PASSWORD},
        timeout=30,
    )


def login(server: RacetrackServer, username: str) -> httpx.Response:
    return httpx.post(
        f"{server.lifecycle}/api/v1/users/login",
        json={"username": username, "password": PASSWORD},
        timeout=30,
    )


def activated_user(server: RacetrackServer, username: str) -> RacetrackServer:
    """Register ``username``, have the admin (``server``) activate it, and log in as it."""
    assert register(server, username).status_code == 200
    assert server.api("POST", f"/users/{username}/activate").status_code == 200
    answer = login(server, username)
    assert answer.status_code == 200, answer.text
    return server.with_token(answer.json()["token"])


def test_a_new_user_registers_is_activated_deploys_calls_and_owns_the_family(
    server: RacetrackServer,
) -> None:
    registered = register(server, JANE)
    assert registered.status_code == 200, registered.text
    assert registered.json()["username"] == JANE
    assert registered.json()["is_active"] is False
    assert "password" not in registered.text
    assert PASSWORD not in registered.text

    refused = login(server, JANE)
    assert refused.status_code == 401, refused.text
    assert "awaits activation" in refused.json()["error"]
    assert "token" not in refused.json()

    server.login()
    activated = server.api("POST", f"/users/{JANE}/activate")
    assert activated.status_code == 200, activated.text
    assert activated.json()["is_active"] is True

    answer = login(server, JANE)
    assert answer.status_code == 200, answer.text
    assert answer.json()["username"] == JANE
    assert answer.json()["is_staff"] is False
    assert answer.cookies.get("X-Racetrack-Auth") == answer.json()["token"]
    jane = server.with_token(answer.json()["token"])

    record = deploy_primer(jane)
    assert record["status"] == "done", f"{record}\n{server.log()}"
    called = jane.call("primer", "latest", {"number": 7907})
    assert called.status_code == 200, called.text
    assert called.json() is True

    john = activated_user(server, JOHN)
    assert john.call("primer", "latest", {"number": 7906}).json() is False
    not_owner = john.api("DELETE", "/job/primer/0.0.1")
    assert not_owner.status_code == 403, not_owner.text
    assert not_owner.json()["error"].startswith(
        f"User {JOHN} has no permission 'delete_job' on job primer"
    )
    assert [job["name"] for job in server.api("GET", "/job").json()] == ["primer"]

    owned = jane.api("DELETE", "/job/primer/0.0.1")
    assert owned.status_code == 200, owned.text
    assert server.api("GET", "/job").json() == []


def deploy_primer2(server: RacetrackServer, tmp_path: Path) -> dict[str, Any]:
    """A second family: primer's code under the name ``primer2``."""
    copy = tmp_path / "primer2"
    shutil.copytree(PRIMER_DIR, copy)
    job_yaml = copy / "job.yaml"
    job_yaml.write_text(job_yaml.read_text().replace("name: primer\n", "name: primer2\n"))
    assert "name: primer2\n" in job_yaml.read_text()
    return server.deploy_folder(copy)


def test_an_esc_calls_only_the_family_it_is_granted_until_its_token_is_revoked(
    server: RacetrackServer, tmp_path: Path
) -> None:
    server.login()
    assert deploy_primer(server)["status"] == "done", server.log()
    assert deploy_primer2(server, tmp_path)["status"] == "done", server.log()

    created = server.api("POST", "/escs", json={"name": "billing"})
    assert created.status_code == 200, created.text
    esc_id = created.json()["id"]
    issued = server.api("POST", f"/escs/{esc_id}/auth_token", json={})
    assert issued.status_code == 200, issued.text
    esc_token = issued.json()["token"]
    assert esc_token.startswith("rt_")
    token_id = issued.json()["id"]

    # Nothing is allowed before the grant.
    before = server.call("primer", "latest", {"number": 7907}, token=esc_token)
    assert before.status_code == 403, before.text

    granted = server.api(
        "POST",
        "/grants",
        json={
            "subject_kind": "esc",
            "subject_name": "billing",
            "scope": "call_job",
            "job_family": "primer",
        },
    )
    assert granted.status_code == 200, granted.text
    time.sleep(1.2)  # Pub's cached refusal (1 s in these tests) expires

    allowed = server.call("primer", "latest", {"number": 7907}, token=esc_token)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json() is True
    other = server.call("primer2", "latest", {"number": 7907}, token=esc_token)
    assert other.status_code == 403, other.text
    assert other.headers["content-type"].startswith("application/json")
    assert other.json()["error"].startswith(
        "Forbidden: ESC billing has no permission 'call_job' on job primer2"
    )
    assert esc_token not in other.text

    # The ESC's token never reaches the admin routes.
    assert server.with_token(esc_token).api("GET", "/escs").status_code == 403

    revoked = server.api("DELETE", f"/escs/{esc_id}/auth_token/{token_id}")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked"] is True
    assert "token" not in revoked.json()
    start = time.monotonic()
    answer = server.call("primer", "latest", {"number": 7907}, token=esc_token)
    while answer.status_code != 401 and time.monotonic() - start < 10:
        time.sleep(0.1)
        answer = server.call("primer", "latest", {"number": 7907}, token=esc_token)
    elapsed = time.monotonic() - start
    assert answer.status_code == 401, answer.text
    assert elapsed <= REVOCATION_BOUND, f"the revoked token worked for {elapsed:.1f} s"
    assert answer.json()["error"] == "Unauthenticated: the token has been revoked; log in again"


def racetrack(
    config_dir: Path, *args: str, cwd: Path | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run the real ``racetrack`` command with a configuration folder of its own."""
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "RACETRACK_CONFIG_DIR": str(config_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "racetrack_cli", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_same_person_through_the_cli(server: RacetrackServer, tmp_path: Path) -> None:
    config = tmp_path / "config"
    remote = server.remote
    step = racetrack(config, "set", "remote", remote)
    assert step.returncode == 0, step.stderr

    step = racetrack(config, "register", "--username", JANE, stdin=f"{PASSWORD}\n")
    assert step.returncode == 0, step.stderr
    assert "activate" in step.stderr
    assert PASSWORD not in step.stdout + step.stderr

    step = racetrack(config, "login", "--username", JANE, stdin=f"{PASSWORD}\n")
    assert step.returncode == 1, step.stderr
    assert "awaits activation" in step.stderr
    assert "Traceback" not in step.stderr

    server.login()
    assert server.api("POST", f"/users/{JANE}/activate").status_code == 200

    step = racetrack(config, "login", "--username", JANE, stdin=f"{PASSWORD}\n")
    assert step.returncode == 0, step.stderr
    assert step.stderr == f"logged in to {server.lifecycle} as {JANE}\n"
    token = racetrack(config, "get", "auth-token").stdout.strip()
    assert token.startswith("rt_")
    saved = [path.read_text() for path in config.rglob("*") if path.is_file()]
    assert saved
    assert all(PASSWORD not in text for text in saved)

    step = racetrack(config, "deploy", cwd=PRIMER_DIR)
    assert step.returncode == 0, f"{step.stderr}\n{server.log()}"
    step = racetrack(config, "call", "primer", "/api/v1/perform", '{"number": 7907}')
    assert (step.returncode, step.stdout) == (0, "true\n"), step.stderr

    # The token the CLI saved is the one Pub accepts for this user.
    assert server.with_token(token).call("primer", "latest", {"number": 7906}).json() is False
    owner = server.with_token(token).api("GET", "/grants/mine").json()
    assert {(g["scope"], g["job_family"]) for g in owner} >= {
        ("deploy_job", "primer"),
        ("delete_job", "primer"),
    }
