"""Pub's probes, metrics and own answers."""

from __future__ import annotations

import httpx
import pytest

from racetrack_core import __version__
from tests.pub.servers import GUEST_TOKEN, admin

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("prefix", ["/pub", ""])
def test_probes_answer_json(client: httpx.Client, pub: str, prefix: str) -> None:
    live = client.get(f"{pub}{prefix}/live")
    ready = client.get(f"{pub}{prefix}/ready")
    health = client.get(f"{pub}{prefix}/health")

    assert live.json() == {"service": "pub", "live": True}
    assert ready.json() == {"service": "pub", "ready": True}
    assert health.json()["service"] == "pub"
    assert health.json()["version"] == __version__
    assert health.json()["status"] == "pass"
    assert {r.headers["content-type"] for r in (live, ready, health)} == {"application/json"}


def test_metrics_count_calls_per_job_and_version(client: httpx.Client, pub: str) -> None:
    for _ in range(3):
        client.get(f"{pub}/pub/job/adder/latest/echo", headers=admin())
    client.get(f"{pub}/pub/job/adder/1.0.0/status/500", headers=admin())
    client.get(f"{pub}/pub/job/adder/latest/echo", headers={"X-Racetrack-Auth": GUEST_TOKEN})
    client.get(f"{pub}/pub/job/ghost/latest/echo", headers=admin())
    client.get(f"{pub}/pub/job/adder/latest/echo")

    response = client.get(f"{pub}/pub/metrics")

    text = response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert 'pub_job_proxy_requests_total{job_name="adder",job_version="1.2.0"} 3.0' in text
    assert 'pub_job_proxy_requests_total{job_name="adder",job_version="1.0.0"} 1.0' in text
    assert (
        'pub_job_proxy_response_codes_total{job_name="adder",job_version="1.0.0",status="500"} 1.0'
        in text
    )
    assert (
        'pub_job_call_response_time_seconds_count{job_name="adder",job_version="1.2.0"} 3.0' in text
    )
    assert 'pub_auth_failed_total{job_name="adder",job_version="latest",status="403"} 1.0' in text
    assert 'pub_auth_failed_total{job_name="-",job_version="-",status="401"} 1.0' in text
    assert (
        'pub_job_proxy_errors_total{job_name="ghost",job_version="1.0.0",'
        'kind="connection_refused"} 1.0' in text
    )
    assert 'pub_lifecycle_cache_total{result="hit"}' in text


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/pub/nothing", 404),
        ("POST", "/pub/live", 405),
        ("GET", "/pub/job/adder/latest/echo", 401),
        ("GET", "/pub/job/nobody/latest/x", 401),
        ("GET", "/metrics", 200),
    ],
)
def test_every_answer_has_a_content_type(
    client: httpx.Client, pub: str, method: str, path: str, status: int
) -> None:
    response = client.request(method, f"{pub}{path}")

    assert response.status_code == status
    assert response.headers["content-type"]
    if status != 200:
        assert "error" in response.json()
