"""Request heads sent to Lifecycle and the Dashboard of a real ``racetrack up``: a head over
64 KiB gets 431, and one trickled in (a header every few tenths of a second, never ending) gets
408 at ``request_head_timeout`` and the connection is closed. Pub has the same limits
(``tests/pub/test_request_limits.py``). Both used to be accepted: a 131 kB head was answered
200 and a trickled one kept its connection open for as long as it went on."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from racetrack_core.testing.server import QUICK_ENV, RacetrackServer
from tests.pub.test_request_limits import exchange, status_and_error

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RacetrackServer]:
    home = tmp_path_factory.mktemp("heads") / "home"
    running = RacetrackServer(home, env={**QUICK_ENV, "RACETRACK_REQUEST_HEAD_TIMEOUT": "1"})
    running.start()
    yield running
    running.stop()


def services(server: RacetrackServer) -> dict[str, tuple[int, bytes]]:
    return {
        "lifecycle": (server.ports["lifecycle"], b"/lifecycle/live"),
        "dashboard": (server.ports["dashboard"], b"/dashboard/live"),
    }


@pytest.mark.parametrize("service", ["lifecycle", "dashboard"])
def test_a_head_over_64_kib_gets_431(server: RacetrackServer, service: str) -> None:
    port, path = services(server)[service]
    headers = b"".join(b"x-filler-%d: %b\r\n" % (n, b"a" * 4000) for n in range(33))  # 131 kB
    answer = exchange(port, b"GET %b HTTP/1.1\r\nhost: rt\r\n%b\r\n" % (path, headers))

    status, error = status_and_error(answer)
    assert status == 431, answer[:200]
    assert error == "Request line and headers exceed 65536 bytes"


@pytest.mark.parametrize("service", ["lifecycle", "dashboard"])
def test_a_head_under_the_limit_is_served(server: RacetrackServer, service: str) -> None:
    port, path = services(server)[service]
    headers = b"".join(b"x-filler-%d: %b\r\n" % (n, b"a" * 4000) for n in range(15))  # 60 kB
    request = b"GET %b HTTP/1.1\r\nhost: rt\r\nconnection: close\r\n%b\r\n" % (path, headers)

    assert exchange(port, request).startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize("service", ["lifecycle", "dashboard"])
def test_a_head_sent_slowly_gets_408_at_the_deadline(server: RacetrackServer, service: str) -> None:
    port, path = services(server)[service]
    request = b"GET %b HTTP/1.1\r\n" % path + b"".join(b"x-%d: 1\r\n" % n for n in range(20))
    started = time.monotonic()
    answer = exchange(port, request, pause=0.3, pieces=20)  # 6 s if never cut off

    status, error = status_and_error(answer)
    assert status == 408, answer[:200]
    assert "1.0 s" in error
    assert time.monotonic() - started < 4
