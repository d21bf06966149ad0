"""``racetrack up`` and ``racetrack serve``: options and the errors a user can cause.

The running server itself is tested end to end in tests/e2e.
"""

from __future__ import annotations

import socket
from pathlib import Path

from click.testing import CliRunner

from racetrack_cli.main import cli
from racetrack_core.testing.server import free_port


def test_up_lists_its_options() -> None:
    result = CliRunner().invoke(cli, ["up", "--help"])
    assert result.exit_code == 0
    for option in ("--home", "--db", "--infra", "--lifecycle-port", "--pub-port"):
        assert option in result.output


def test_an_unknown_infrastructure_target_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["up", "--home", str(tmp_path), "--infra", "moon"])
    assert result.exit_code == 2
    assert (
        "unknown infrastructure target 'moon'. Installed: docker, kubernetes, local"
        in result.output
    )
    assert not (tmp_path / "racetrack.db").exists()


def test_serve_needs_a_known_service() -> None:
    result = CliRunner().invoke(cli, ["serve", "gateway"])
    assert result.exit_code == 2
    assert "'gateway' is not one of 'lifecycle', 'pub', 'dashboard'" in result.output


def test_a_malformed_database_url_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["up", "--home", str(tmp_path), "--db", "mysql://x/y"])
    assert result.exit_code == 1
    assert "database 'mysql' is not supported" in result.output
    assert "Traceback" not in result.output


def test_a_port_in_use_is_one_line_naming_the_option(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # The other services get free ports, so that a server already on the defaults does not
        # answer first.
        free = [str(free_port()), str(free_port())]
        options = [
            "--lifecycle-port",
            free[0],
            "--dashboard-port",
            free[1],
            "--pub-port",
            str(port),
        ]
        result = CliRunner().invoke(cli, ["up", "--home", str(tmp_path), *options])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port} for pub" in result.output
    assert "--pub-port" in result.output
    assert "Traceback" not in result.output
