"""Lifecycle behind a reverse proxy (an Ingress controller, nginx): the login rate limit per
client address counts each client, not the proxy, once the proxy is named in
``trusted_proxies``; the forwarded address is believed from the named proxies only.

Real ``racetrack up`` processes on loopback; the "clients" are addresses from the
documentation ranges written in ``X-Forwarded-For`` (no traffic goes to them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from racetrack_core.testing.server import QUICK_ENV, RacetrackServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def server_with(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], RacetrackServer]]:
    made: list[RacetrackServer] = []

    def start(env: dict[str, str]) -> RacetrackServer:
        server = RacetrackServer(tmp_path / f"home-{len(made)}", env={**QUICK_ENV, **env})
        made.append(server)
        server.start()
        return server

    yield start
    for server in made:
        server.stop()


def failed_logins(server: RacetrackServer, client: str, count: int, first: int = 0) -> set[int]:
    """``count`` wrong passwords, each for another account, forwarded for ``client``."""
    statuses = set()
    with httpx.Client(trust_env=False, timeout=10) as http:
        for number in range(first, first + count):
            answer = http.post(
                f"{server.lifecycle}/api/v1/users/login",
                json={"username": f"user{number}@example.com", "password": "not-the-password"},
                headers={"X-Forwarded-For": client},
            )
            statuses.add(answer.status_code)
    return statuses


def test_behind_a_named_proxy_each_forwarded_client_has_its_own_login_limit(
    server_with: Callable[[dict[str, str]], RacetrackServer],
) -> None:
    server = server_with({"RACETRACK_TRUSTED_PROXIES": "127.0.0.1"})
    assert failed_logins(server, "203.0.113.7", 20) == {401}
    assert failed_logins(server, "203.0.113.7", 1, first=20) == {429}
    assert failed_logins(server, "203.0.113.8", 1, first=21) == {401}  # another client


def test_without_a_named_proxy_forwarded_addresses_are_not_believed(
    server_with: Callable[[dict[str, str]], RacetrackServer],
) -> None:
    server = server_with({})
    assert failed_logins(server, "203.0.113.7", 20) == {401}
    # All came from 127.0.0.1, whatever they claimed: that address is held back.
    assert failed_logins(server, "203.0.113.8", 1, first=20) == {429}
