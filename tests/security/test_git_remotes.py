"""Git remotes on loopback and private addresses: refused by the API, with one sentence for all.

The manifest's schema allows only http(s) remotes without credentials; other transports and
spellings are refused by the same check inside ``fetch_git`` (``tests/core/test_source.py``).
The server used to clone from any address it could reach, and its different errors (connection
refused, not a git repository, timed out) told a caller which local ports answer. Now a remote
on such a host is refused before anything connects to it, unless the setting
``source_allowed_hosts`` names it (the test git servers are allowed that way).
"""

from __future__ import annotations

import re
import socket

import pytest

from racetrack_core.testing.server import RacetrackServer

MANIFEST = {
    "name": "internal-remote",
    "version": "0.0.1",
    "owner_email": "owner@example.com",
    "jobtype": "python3:latest",
    "jobtype_extra": {"entrypoint_path": "entrypoint.py"},
}


def refusal(server: RacetrackServer, remote: str) -> str:
    answer = server.api(
        "POST", "/deploy", json={"manifest": {**MANIFEST, "git": {"remote": remote}}}
    )
    assert answer.status_code == 400, answer.text
    error: str = answer.json()["error"]
    return error


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_any_local_port_gets_the_same_refusal(shared_server: RacetrackServer) -> None:
    lifecycle_port = int(shared_server.lifecycle.rsplit(":", 1)[1].split("/")[0])
    with socket.create_server(("127.0.0.1", 0)) as silent:
        ports = [lifecycle_port, silent.getsockname()[1], 1]  # a service, a silent one, nothing
        errors = {
            re.sub(
                r"127\.0\.0\.1:\d+",
                "127.0.0.1:PORT",
                refusal(shared_server, f"http://127.0.0.1:{port}/x.git"),
            )
            for port in ports
        }
    assert errors == {
        "manifest field 'git.remote': 'http://127.0.0.1:PORT/x.git' is on a loopback or private "
        "address (127.0.0.1), which the server does not fetch from unless allowed: add "
        "'127.0.0.1:PORT' to the setting source_allowed_hosts (RACETRACK_SOURCE_ALLOWED_HOSTS)"
    }


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "remote",
    [
        "http://localhost/x.git",
        "https://[::1]/x.git",
        "https://[::ffff:7f00:1]/x.git",
        "http://169.254.169.254/latest/meta-data/",
        "https://10.0.0.8/x.git",
        "https://[fd00:ec2::254]/x.git",
        "http://192.168.0.10/x.git",
        "http://2130706433/x.git",
        "http://127.1/x.git",
    ],
)
def test_internal_hosts_are_refused_by_the_api(shared_server: RacetrackServer, remote: str) -> None:
    error = refusal(shared_server, remote)
    assert "is on a loopback or private address" in error
    records = shared_server.api("GET", "/deploy").json()
    assert [r for r in records if r["job_name"] == MANIFEST["name"]] == []  # nothing admitted
