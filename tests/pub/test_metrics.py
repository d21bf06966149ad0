"""Pub's counters: plain numbers on the hot path, Prometheus text as prometheus_client writes it."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from racetrack_core.pub.metrics import LATENCY_BUCKETS, Metrics


def without_timestamps(text: bytes) -> list[str]:
    return [re.sub(r" 1\.\d+e\+09$", " T", line) for line in text.decode().splitlines()]


def test_calls_render_as_prometheus_clients_own_counters_and_histogram() -> None:
    metrics = Metrics()
    expected = CollectorRegistry()
    calls = Counter(
        "pub_job_proxy_requests",
        "Calls forwarded to a job",
        ("job_name", "job_version"),
        registry=expected,
    )
    latency = Histogram(
        "pub_job_call_response_time_seconds",
        "Time from a call's arrival to the start of the job's answer",
        ("job_name", "job_version"),
        buckets=LATENCY_BUCKETS,
        registry=expected,
    )
    for seconds in (0.0005, 0.001, 0.003, 0.25, 75.0):
        metrics.record_call("adder", "1.2.0", 200, seconds)
        calls.labels("adder", "1.2.0").inc()
        latency.labels("adder", "1.2.0").observe(seconds)

    rendered = without_timestamps(metrics.render())

    for line in without_timestamps(generate_latest(expected)):
        assert line in rendered


def test_every_counter_is_rendered_with_its_labels() -> None:
    metrics = Metrics()
    metrics.record_call("adder", "1.2.0", 500, 0.01)
    metrics.record_upstream_error("adder", "1.2.0", "timeout")
    metrics.record_upstream_error("ghost", "1.0.0", "connection_refused")
    metrics.record_auth_failure("-", "-", 401)
    metrics.record_cache("hit")
    metrics.record_cache("hit")
    metrics.record_lifecycle_call()
    metrics.record_lifecycle_error()

    text = metrics.render().decode()

    assert 'pub_job_proxy_requests_total{job_name="adder",job_version="1.2.0"} 2.0' in text
    assert 'pub_job_proxy_requests_total{job_name="ghost",job_version="1.0.0"} 1.0' in text
    assert (
        'pub_job_proxy_response_codes_total{job_name="adder",job_version="1.2.0",status="500"} 1.0'
        in text
    )
    assert (
        'pub_job_proxy_errors_total{job_name="ghost",job_version="1.0.0",'
        'kind="connection_refused"} 1.0' in text
    )
    assert 'pub_auth_failed_total{job_name="-",job_version="-",status="401"} 1.0' in text
    assert 'pub_lifecycle_cache_total{result="hit"} 2.0' in text
    assert 'pub_lifecycle_cache_total{result="stale"} 0.0' in text
    assert "pub_lifecycle_calls_total 1.0" in text
    assert "pub_lifecycle_errors_total 1.0" in text
    assert (
        'pub_job_call_response_time_seconds_created{job_name="adder",job_version="1.2.0"}' in text
    )
    assert "# TYPE pub_job_call_response_time_seconds histogram" in text
