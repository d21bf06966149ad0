"""``register``, ``token``, ``user``, ``esc``, ``grant``, ``grants``, ``revoke`` and ``audit``
against a real Lifecycle API served by uvicorn on a free port (SQLite, in a thread)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from click.testing import CliRunner, Result
from sqlmodel import Session

from racetrack_cli.main import cli
from racetrack_core import PluginManager
from racetrack_core.lifecycle import create_app
from racetrack_core.lifecycle.accounts import ensure_admin
from racetrack_core.settings import Settings
from racetrack_core.storage.database import connect, migrate
from racetrack_core.storage.models import JobFamily

ADMIN_PASSWORD = "an admin password for the cli tests"
PASSWORD = "a long enough pass phrase"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a Lifecycle API with an admin account and a job family named adder."""
    home = tmp_path_factory.mktemp("lifecycle") / "home"
    settings = Settings(home=home, job_watch_interval=3600)
    engine = connect(settings.database_url)
    migrate(engine)
    ensure_admin(engine, home, ADMIN_PASSWORD)
    with Session(engine) as session:
        session.add(JobFamily(name="adder"))
        session.commit()
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, PluginManager(), engine),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the Lifecycle API did not start"
        time.sleep(0.05)
    yield url
    server.should_exit = True
    thread.join(timeout=30)
    engine.dispose()


class Racetrack:
    """Runs ``racetrack`` in-process with a configuration folder of its own."""

    def __init__(self, config_dir: Path, remote: str) -> None:
        self.config_dir = config_dir
        self("set", "remote", remote)

    def __call__(self, *args: str, stdin: str | None = None) -> Result:
        return CliRunner().invoke(
            cli,
            list(args),
            prog_name="racetrack",
            input=stdin,
            env={"RACETRACK_CONFIG_DIR": str(self.config_dir)},
            catch_exceptions=False,
        )


@pytest.fixture(scope="module")
def admin(remote: str, tmp_path_factory: pytest.TempPathFactory) -> Racetrack:
    rt = Racetrack(tmp_path_factory.mktemp("admin-config"), remote)
    assert rt("login", "--username", "admin", stdin=ADMIN_PASSWORD + "\n").exit_code == 0
    return rt


def test_register_activate_login_and_tokens(admin: Racetrack, remote: str, tmp_path: Path) -> None:
    jane = Racetrack(tmp_path / "jane", remote)
    weak = jane("register", "--username", "jane@example.com", stdin="12345678901\n")
    assert weak.exit_code == 1
    assert weak.stderr == (
        "Error: field 'password' is all digits: mix in letters or other characters\n"
    )

    done = jane("register", "--username", "jane@example.com", stdin=PASSWORD + "\n")
    assert done.exit_code == 0, done.stderr
    assert "a staff member must activate the account" in done.stderr
    early = jane("login", "--username", "jane@example.com", stdin=PASSWORD + "\n")
    assert early.exit_code == 1
    assert "awaits activation" in early.stderr

    assert "jane@example.com  no" in admin("user", "list").stdout
    assert admin("user", "activate", "jane@example.com").exit_code == 0
    users = json.loads(admin("user", "list", "--json").stdout)
    assert {u["username"]: u["is_active"] for u in users}["jane@example.com"] is True
    assert jane("login", "--username", "jane@example.com", stdin=PASSWORD + "\n").exit_code == 0

    created = jane("token", "create", "--expires-in-days", "30")
    assert created.exit_code == 0, created.stderr
    new_token = created.stdout.strip()
    assert new_token.startswith("rt_")
    assert "shown only this once" in created.stderr
    listing = jane("token", "list")
    assert new_token not in listing.stdout
    assert listing.stdout.splitlines()[0].split()[:3] == ["ID", "ENDS", "WITH"]
    tokens = json.loads(jane("token", "list", "--json").stdout)
    assert len(tokens) == 2
    made = next(t for t in tokens if t["hint"] == "…" + new_token[-4:])
    assert jane("token", "revoke", made["id"]).exit_code == 0
    assert json.loads(jane("token", "list", "--json").stdout)[0]["revoked"] is True

    old = jane("get", "auth-token").stdout.strip()
    assert jane("token", "regenerate").exit_code == 0
    assert jane("get", "auth-token").stdout.strip() != old
    assert jane("token", "list").exit_code == 0

    refused = jane("user", "list")
    assert refused.exit_code == 1
    assert "not a staff member" in refused.stderr
    assert admin("user", "deactivate", "jane@example.com").exit_code == 0
    assert "awaits activation" in jane("token", "list").stderr


def test_escs_grants_and_audit(admin: Racetrack) -> None:
    created = admin("esc", "create", "billing")
    assert created.exit_code == 0, created.stderr
    assert "racetrack esc token billing" in created.stderr
    assert admin("esc", "create", "billing").exit_code == 1
    assert admin("esc", "list").stdout.splitlines()[1].startswith("billing ")
    token = admin("esc", "token", "billing", "--expires-in-days", "5").stdout.strip()
    assert token.startswith("rt_")
    [record] = json.loads(admin("esc", "tokens", "billing", "--json").stdout)
    assert record["active"] is True

    granted = admin("grant", "esc", "billing", "call_job", "--family", "adder")
    assert granted.exit_code == 0, granted.stderr
    grant_id = granted.stdout.strip()
    assert granted.stderr == "granted call_job on job adder to ESC billing\n"
    answer = httpx.get(
        admin("get", "remote").stdout.strip() + "/api/v1/grants/mine",
        headers={"X-Racetrack-Auth": token},
    )
    assert [g["id"] for g in answer.json()] == [grant_id]
    assert grant_id in admin("grants", "--subject-kind", "esc").stdout

    ghost = admin("grant", "esc", "billing", "call_job", "--family", "ghost")
    assert ghost.exit_code == 1
    assert "no job family named ghost" in ghost.stderr
    usage = admin("grant", "esc", "billing", "call_job", "--version", "1.0.0")
    assert usage.exit_code == 2
    assert admin("grant", "esc", "billing", "call").exit_code == 2

    assert admin("revoke", grant_id).exit_code == 0
    assert admin("revoke", grant_id).exit_code == 1
    assert admin("esc", "revoke-token", "billing", record["id"]).exit_code == 0
    assert admin("esc", "delete", "billing").exit_code == 0

    log = admin("audit", "--job", "adder").stdout
    assert "admin granted ESC billing a permission 'call_job' on job adder" in log
    assert "admin revoked a permission of ESC billing" in log
    events = json.loads(admin("audit", "--mine", "--json", "--limit", "3").stdout)
    assert len(events) == 3
    assert all(e["actor"] == "admin" for e in events)
