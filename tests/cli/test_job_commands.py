"""list, logs, build-logs, delete, move, call and plugin commands against a stand-in Lifecycle."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from racetrack_cli.config import ClientConfig
from racetrack_cli.job_commands import parse_payload

from .fake_lifecycle import FakeLifecycle, fake_lifecycle

RunCli = Callable[..., Result]
TOKEN = "rt_0123456789abcdefghij"
API = "/lifecycle/api/v1"


def job_record(lifecycle: FakeLifecycle) -> dict[str, object]:
    pub = lifecycle.url.removesuffix("/lifecycle") + "/pub"
    return {
        "name": "primer",
        "version": "0.0.1",
        "status": "running",
        "pub_url": f"{pub}/job/primer/0.0.1",
        "job_type_version": "python3:1.0.0",
        "infrastructure_target": "local",
        "deployed_by": "admin",
        "update_time": 0,
        "last_call_time": None,
    }


@pytest.fixture
def lifecycle() -> Iterator[FakeLifecycle]:
    """A stand-in Lifecycle that is the current remote, logged in."""
    with fake_lifecycle() as fake:
        config = ClientConfig.load()
        config.lifecycle_url = fake.url
        config.user_auths[fake.url] = TOKEN
        config.save()
        yield fake


def test_list_prints_a_table(run_cli: RunCli, lifecycle: FakeLifecycle) -> None:
    lifecycle.answer("GET", f"{API}/job", (200, [job_record(lifecycle)]))
    result = run_cli("list")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "NAME    VERSION  STATUS",
        "primer  0.0.1    RUNNING",
    ]
    assert lifecycle.seen[0].headers["X-Racetrack-Auth"] == TOKEN


def test_list_with_columns_and_as_json(run_cli: RunCli, lifecycle: FakeLifecycle) -> None:
    lifecycle.answer("GET", f"{API}/job", (200, [job_record(lifecycle)]))
    header, row = run_cli("list", "-c", "job_type", "-c", "last_call_at").stdout.splitlines()
    assert header.split() == ["NAME", "VERSION", "STATUS", "JOB", "TYPE", "LAST", "CALL"]
    assert row.split() == ["primer", "0.0.1", "RUNNING", "python3:1.0.0", "-"]
    assert "URL" in run_cli("list", "-c", "all").stdout
    assert json.loads(run_cli("list", "--json").stdout) == [job_record(lifecycle)]
    assert run_cli("list", "-c", "colour").exit_code == 2


def test_a_refused_token_says_to_log_in_again(run_cli: RunCli, lifecycle: FakeLifecycle) -> None:
    refused = {"error": "the token has expired; log in again", "type": "Unauthenticated"}
    lifecycle.answer("GET", f"{API}/job", (401, refused))
    result = run_cli("list")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: the token has expired; log in again ({lifecycle.url}): "
        "run racetrack login --username <you>\n"
    )


def test_not_logged_in(run_cli: RunCli, lifecycle: FakeLifecycle) -> None:
    assert run_cli("logout").exit_code == 0
    refused = {"error": "no header X-Racetrack-Auth: not logged in", "type": "Unauthenticated"}
    lifecycle.answer("GET", f"{API}/job", (401, refused))
    result = run_cli("list")
    assert result.stderr == (
        f"Error: not logged in to {lifecycle.url}: run racetrack login --username <you>\n"
    )


def test_logs_and_build_logs(run_cli: RunCli, lifecycle: FakeLifecycle) -> None:
    lifecycle.answer("GET", f"{API}/job/primer/latest/logs", (200, {"logs": "one\ntwo\n"}))
    lifecycle.answer("GET", f"{API}/job/primer/0.0.1/build-logs", (200, {"logs": "built"}))
    assert run_cli("logs", "primer", "--tail", "2").stdout == "one\ntwo\n"
    assert lifecycle.seen[-1].path.endswith("/logs?tail=2")
    assert run_cli("build-logs", "primer", "--version", "0.0.1").stdout == "built\n"
    assert lifecycle.seen[-1].path.endswith("/build-logs?tail=0")


def test_an_unknown_job(run_cli: RunCli, lifecycle: FakeLifecycle) -> None:
    result = run_cli("logs", "nope")
    assert result.exit_code == 1
    assert result.stderr == f"Error: no route {API}/job/nope/latest/logs?tail=20\n"


def test_delete_and_move(run_cli: RunCli, lifecycle: FakeLifecycle) -> None:
    lifecycle.answer("DELETE", f"{API}/job/primer/0.0.1", (200, None))
    lifecycle.answer("POST", f"{API}/job/primer/0.0.1/move", (200, None))
    result = run_cli("delete", "primer", "--version", "0.0.1")
    assert result.exit_code == 0
    assert result.stderr == "deleted job primer 0.0.1\n"
    result = run_cli("move", "primer", "--version", "0.0.1", "--infrastructure", "docker")
    assert result.exit_code == 0
    assert lifecycle.seen[-1].body == b'{"infrastructure_target":"docker"}'
    assert "now runs on docker" in result.stderr
    assert run_cli("delete", "primer").exit_code == 2


def test_call_posts_through_pub(run_cli: RunCli, lifecycle: FakeLifecycle) -> None:
    lifecycle.answer("GET", f"{API}/job/primer/latest", (200, job_record(lifecycle)))
    lifecycle.answer("POST", "/pub/job/primer/0.0.1/api/v1/perform", (200, True))
    result = run_cli("call", "primer", "/api/v1/perform", '{"number": 7907}')
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "true\n"
    seen = lifecycle.requests_to("/pub/job/primer/0.0.1/api/v1/perform")[0]
    assert json.loads(seen.body) == {"number": 7907}
    assert seen.headers["X-Racetrack-Auth"] == TOKEN


def test_call_with_a_yaml_payload_prints_json(run_cli: RunCli, lifecycle: FakeLifecycle) -> None:
    lifecycle.answer("GET", f"{API}/job/primer/latest", (200, job_record(lifecycle)))
    lifecycle.answer("POST", "/pub/job/primer/0.0.1/api/v1/sum", (200, {"sum": 3}))
    result = run_cli("call", "primer", "api/v1/sum", "numbers: [1, 2]")
    assert json.loads(result.stdout) == {"sum": 3}
    sent = lifecycle.requests_to("/pub/job/primer/0.0.1/api/v1/sum")[0].body
    assert json.loads(sent) == {"numbers": [1, 2]}


def test_call_shows_the_jobs_error(run_cli: RunCli, lifecycle: FakeLifecycle) -> None:
    lifecycle.answer("GET", f"{API}/job/primer/latest", (200, job_record(lifecycle)))
    refused = {"error": "unexpected argument 'nmbr' for perform", "type": "BadRequest"}
    lifecycle.answer("POST", "/pub/job/primer/0.0.1/api/v1/perform", (400, refused))
    result = run_cli("call", "primer", "/api/v1/perform", '{"nmbr": 1}')
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.endswith("/pub/job/primer/0.0.1/api/v1/perform answered 400: " + refused["error"])


def test_call_with_a_bad_payload_is_a_usage_error(run_cli: RunCli) -> None:
    result = run_cli("call", "primer", "/api/v1/perform", '{"number": [7')
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: Invalid value for 'PAYLOAD': neither JSON nor YAML:")


def test_call_curl_prints_a_command(run_cli: RunCli, lifecycle: FakeLifecycle) -> None:
    lifecycle.answer("GET", f"{API}/job/primer/latest", (200, job_record(lifecycle)))
    result = run_cli("call", "primer", "/api/v1/perform", "number: 7907", "--curl")
    assert result.exit_code == 0
    assert '-H "X-Racetrack-Auth: $(racetrack get auth-token)"' in result.stdout
    assert """-d '{"number": 7907}'""" in result.stdout
    assert not lifecycle.requests_to("/pub/job/primer/0.0.1/api/v1/perform")


def test_payloads() -> None:
    assert parse_payload('{"a": 1}') == {"a": 1}
    assert parse_payload("a: 1") == {"a": 1}
    assert parse_payload("[1, 2]") == [1, 2]
    assert parse_payload("7") == 7


def test_plugin_list_from_the_server(run_cli: RunCli, lifecycle: FakeLifecycle) -> None:
    plugins = [
        {
            "name": "python3",
            "version": "0.1.0",
            "builtin": True,
            "job_types": ["python3:1.0.0"],
            "infrastructure_targets": [],
            "hooks": ["register_job_types"],
        }
    ]
    lifecycle.answer("GET", f"{API}/plugin", (200, plugins))
    result = run_cli("plugin", "list")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1].split() == [
        "python3", "0.1.0", "yes", "python3:1.0.0", "-", "register_job_types"
    ]  # fmt: skip
    assert json.loads(run_cli("plugin", "list", "--json").stdout) == plugins
    assert run_cli("plugin", "list", "--local", "--remote", "x").exit_code == 2


def test_plugin_install_uploads_a_wheel(
    run_cli: RunCli, lifecycle: FakeLifecycle, tmp_path: Path
) -> None:
    wheel = tmp_path / "racetrack_hello-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK wheel bytes")
    installed = {"name": "hello", "version": "0.1.0", "job_types": ["hello:1.0.0"]}
    lifecycle.answer("POST", f"{API}/plugin/upload/{wheel.name}", (200, installed))
    result = run_cli("plugin", "install", str(wheel))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "plugin hello 0.1.0: job types hello:1.0.0\n"
    [seen] = lifecycle.requests_to(f"{API}/plugin/upload/{wheel.name}")
    assert seen.body == b"PK wheel bytes"
    assert seen.headers["X-Racetrack-Auth"] == TOKEN


def test_plugin_install_on_a_server_takes_a_wheel(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("plugin", "install", str(tmp_path))
    assert result.exit_code == 2
    assert "is not a wheel: a server installs wheels (build one with uv build" in result.stderr


def test_plugin_uninstall_needs_staff(run_cli: RunCli, lifecycle: FakeLifecycle) -> None:
    refused = {"error": "User bob is not a staff member; ask an administrator", "type": "Forbidden"}
    lifecycle.answer("DELETE", f"{API}/plugin/hello", (403, refused))
    result = run_cli("plugin", "uninstall", "hello")
    assert result.exit_code == 1
    assert result.stderr == "Error: User bob is not a staff member; ask an administrator\n"
    lifecycle.answer("DELETE", f"{API}/plugin/hello", (200, None))
    assert (
        run_cli("plugin", "uninstall", "hello").stderr
        == f"uninstalled hello from {lifecycle.url}\n"
    )
