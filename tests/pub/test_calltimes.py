"""Pub reports the jobs' last call times to Lifecycle in batches, not once per call.

Run against the ASGI app here and against the front server with the app behind it in
``test_assembly`` (the fixture ``start_pub`` is replaced there).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from racetrack_core.pub import PubConfig, create_app
from racetrack_core.pub.asgi.serving import PubHttpProtocol
from tests.pub.servers import LifecycleStandIn, Server, admin

INTERNAL_TOKEN = "internal-token-for-the-call-time-tests"


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return result


def reported(lifecycle: LifecycleStandIn) -> dict[tuple[str, str], float]:
    """The latest time of each job version that Lifecycle accepted."""
    times: dict[tuple[str, str], float] = {}
    for report in lifecycle.call_time_reports:
        if report["status"] == 200:
            for call in report["calls"]:
                key = (call["name"], call["version"])
                times[key] = max(times.get(key, 0.0), call["last_call_time"])
    return times


def test_many_calls_become_one_batched_report_per_interval(
    start_pub: Callable[..., str], lifecycle: LifecycleStandIn, client: httpx.Client
) -> None:
    pub = start_pub(internal_token=INTERNAL_TOKEN, call_time_interval=0.5)
    before = time.time()
    for _ in range(40):
        assert client.get(f"{pub}/pub/job/adder/latest/echo", headers=admin()).status_code == 200
    assert client.get(f"{pub}/pub/job/adder/1.0.0/echo", headers=admin()).status_code == 200
    after = time.time()

    times = wait_for(lambda: len(reported(lifecycle)) == 2 and reported(lifecycle), "a report")

    # Resolved versions: "latest" is 1.2.0.
    assert set(times) == {("adder", "1.2.0"), ("adder", "1.0.0")}
    assert all(before <= when <= after for when in times.values())
    # Forty-one calls, a handful of reports at most (one per interval), all with Pub's token.
    assert len(lifecycle.call_time_reports) <= 3
    assert {report["token"] for report in lifecycle.call_time_reports} == {INTERNAL_TOKEN}
    # Nothing new, nothing sent: the next intervals stay quiet.
    sent = len(lifecycle.call_time_reports)
    time.sleep(1.2)
    assert len(lifecycle.call_time_reports) == sent


def test_a_refused_report_is_sent_again_with_the_next_one(
    start_pub: Callable[..., str], lifecycle: LifecycleStandIn, client: httpx.Client
) -> None:
    lifecycle.call_time_statuses = [503]
    pub = start_pub(internal_token=INTERNAL_TOKEN, call_time_interval=0.3)
    assert client.get(f"{pub}/pub/job/adder/1.0.0/echo", headers=admin()).status_code == 200

    wait_for(lambda: ("adder", "1.0.0") in reported(lifecycle), "the report to be sent again")

    assert [report["status"] for report in lifecycle.call_time_reports][:2] == [503, 200]


def test_refused_and_failed_calls_are_not_calls(
    start_pub: Callable[..., str], lifecycle: LifecycleStandIn, client: httpx.Client
) -> None:
    pub = start_pub(internal_token=INTERNAL_TOKEN, call_time_interval=0.2)
    assert client.get(f"{pub}/pub/job/adder/1.0.0/echo").status_code == 401
    assert client.get(f"{pub}/pub/job/ghost/1.0.0/echo", headers=admin()).status_code == 502
    time.sleep(0.8)
    assert reported(lifecycle) == {}


def test_the_last_times_are_reported_when_pub_stops(
    lifecycle: LifecycleStandIn, client: httpx.Client
) -> None:
    assert lifecycle.server is not None
    config = PubConfig(
        lifecycle_url=lifecycle.server.url, internal_token=INTERNAL_TOKEN, call_time_interval=3600
    )
    pub = Server(create_app(config), lifespan="on", proxy_headers=False, http=PubHttpProtocol)
    try:
        assert client.get(f"{pub.url}/job/adder/1.2.0/echo", headers=admin()).status_code == 200
        assert lifecycle.call_time_reports == []
    finally:
        pub.stop()
    assert set(reported(lifecycle)) == {("adder", "1.2.0")}


def test_without_an_internal_token_nothing_is_reported(
    start_pub: Callable[..., str], lifecycle: LifecycleStandIn, client: httpx.Client
) -> None:
    pub = start_pub(call_time_interval=0.2)
    assert client.get(f"{pub}/pub/job/adder/1.0.0/echo", headers=admin()).status_code == 200
    time.sleep(0.6)
    assert lifecycle.call_time_reports == []
