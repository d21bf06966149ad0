"""The call metrics: one bucket per observation, rendered as Prometheus's cumulative buckets."""

from __future__ import annotations

import re

from racetrack_plugins.python3.wrapper.metrics import DURATION_BUCKETS, CallMetrics, _Histogram


def cumulative_by_loop(values: list[float]) -> list[int]:
    """What the histogram showed when every observation looped over every bucket."""
    return [sum(1 for value in values if value <= bound) for bound in DURATION_BUCKETS]


def test_cumulative_counts_are_those_of_a_loop_over_the_buckets():
    values = [0.0, 0.004, 0.005, 0.0051, 0.3, 1.0, 59.9, 60.0, 61.0, 1000.0, *DURATION_BUCKETS]
    histogram = _Histogram()
    for value in values:
        histogram.observe(value)
    assert histogram.cumulative_counts() == cumulative_by_loop(values)
    assert histogram.count == len(values)
    assert histogram.total == sum(values)


def test_render_shows_every_endpoint_sorted_with_its_buckets():
    metrics = CallMetrics()
    metrics.call_done("/perform", metrics.call_started("/perform"))
    started = metrics.call_started("/double")
    metrics.call_done("/double", started, internal_error=True)
    metrics.call_started("/double")  # still running: counted as started, not in the histogram
    text = metrics.render()
    assert re.findall(r"^endpoint_requests_started_total.*$", text, re.MULTILINE) == [
        'endpoint_requests_started_total{endpoint="/double"} 2',
        'endpoint_requests_started_total{endpoint="/perform"} 1',
    ]
    assert re.findall(r"^request_internal_errors_total\{.*$", text, re.MULTILINE) == [
        'request_internal_errors_total{endpoint="/double"} 1'
    ]
    buckets = re.findall(
        r'^request_duration_seconds_bucket\{endpoint="/perform",le="([^"]+)"\} (\d+)$',
        text,
        re.MULTILINE,
    )
    assert [bound for bound, _ in buckets] == [repr(bound) for bound in DURATION_BUCKETS] + ["+Inf"]
    assert all(count == "1" for _, count in buckets)
    assert 'request_duration_seconds_count{endpoint="/double"} 1\n' in text
    assert "requests_started_total 3\nrequests_done_total" not in text  # families have headers
    assert "requests_started_total 3\n" in text
    assert "requests_done_total 2\n" in text
