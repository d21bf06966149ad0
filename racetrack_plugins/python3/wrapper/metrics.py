"""Call metrics, exposed as ``GET /metrics`` in the Prometheus text format (version 0.0.4).

Written by hand because ``prometheus-client`` is not a dependency; the wrapper needs only
counters, one gauge and one histogram, all kept in the app's state. A call costs one bucket
increment, found by bisection; the buckets are summed into Prometheus's cumulative counts only
when ``/metrics`` is read, which is far rarer than a call. The job's own ``metrics()`` method,
if it has one, adds its gauges after them on every read.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import math
import re
import time
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

logger = logging.getLogger("racetrack.job")
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class _Histogram:
    #: Observations per bucket, not cumulative; the last one is above every bound (``+Inf``).
    bucket_counts: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))
    count: int = 0
    total: float = 0.0

    def observe(self, value: float) -> None:
        # The first bucket whose bound is >= value, as Prometheus's "le" means.
        self.bucket_counts[bisect.bisect_left(DURATION_BUCKETS, value)] += 1
        self.count += 1
        self.total += value

    def cumulative_counts(self) -> list[int]:
        """The count at or below each bound of ``DURATION_BUCKETS``, as Prometheus shows it."""
        return list(itertools.accumulate(self.bucket_counts[:-1]))


@dataclass
class _EndpointMetrics:
    started: int = 0
    internal_errors: int = 0
    durations: _Histogram = field(default_factory=_Histogram)


@dataclass
class CallMetrics:
    """Counters of the calls to a job's endpoints (perform, auxiliary)."""

    requests_started: int = 0
    requests_done: int = 0
    last_call_timestamp: float = 0.0
    endpoints: dict[str, _EndpointMetrics] = field(default_factory=dict)

    def call_started(self, endpoint: str) -> float:
        """Count a call; return its start time for ``call_done``."""
        self.requests_started += 1
        metrics = self.endpoints.get(endpoint)
        if metrics is None:
            metrics = self.endpoints[endpoint] = _EndpointMetrics()
        metrics.started += 1
        self.last_call_timestamp = time.time()
        return time.perf_counter()

    def call_done(self, endpoint: str, started: float, *, internal_error: bool = False) -> None:
        """Count a call that ``call_started`` counted as finished, and observe its duration."""
        self.requests_done += 1
        metrics = self.endpoints[endpoint]
        metrics.durations.observe(time.perf_counter() - started)
        if internal_error:
            metrics.internal_errors += 1

    def render(self) -> str:
        """The metrics in the Prometheus text exposition format."""
        lines: list[str] = []
        _family(lines, "requests_started_total", "counter", "Calls to the job's endpoints started")
        lines.append(f"requests_started_total {self.requests_started}")
        _family(lines, "requests_done_total", "counter", "Calls to the job's endpoints finished")
        lines.append(f"requests_done_total {self.requests_done}")
        _family(lines, "endpoint_requests_started_total", "counter", "Calls started, per endpoint")
        endpoints = sorted(self.endpoints.items())
        for endpoint, metrics in endpoints:
            labels = _labels(endpoint=endpoint)
            lines.append(f"endpoint_requests_started_total{labels} {metrics.started}")
        _family(
            lines,
            "request_internal_errors_total",
            "counter",
            "Calls that failed with an exception in the job's code, per endpoint",
        )
        for endpoint, metrics in endpoints:
            if metrics.internal_errors:
                labels = _labels(endpoint=endpoint)
                lines.append(f"request_internal_errors_total{labels} {metrics.internal_errors}")
        _family(lines, "request_duration_seconds", "histogram", "Duration of calls, per endpoint")
        for endpoint, metrics in endpoints:
            histogram = metrics.durations
            if not histogram.count:  # started, not finished yet
                continue
            for bound, count in zip(DURATION_BUCKETS, histogram.cumulative_counts(), strict=True):
                labels = _labels(endpoint=endpoint, le=_number(bound))
                lines.append(f"request_duration_seconds_bucket{labels} {count}")
            labels = _labels(endpoint=endpoint, le="+Inf")
            lines.append(f"request_duration_seconds_bucket{labels} {histogram.count}")
            labels = _labels(endpoint=endpoint)
            lines.append(f"request_duration_seconds_sum{labels} {_number(histogram.total)}")
            lines.append(f"request_duration_seconds_count{labels} {histogram.count}")
        _family(lines, "last_call_timestamp", "gauge", "Unix time of the last call started")
        lines.append(f"last_call_timestamp {_number(self.last_call_timestamp)}")
        return "\n".join(lines) + "\n"


def _family(lines: list[str], name: str, kind: str, help_text: str) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")


def _labels(**labels: str) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")

    return "{" + ",".join(f'{name}="{escape(value)}"' for name, value in labels.items()) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def render_custom(metrics: object) -> str:
    """The job's own ``metrics()`` as gauges: ``[{"name", "value", "description"?, "labels"?}]``.

    As in the original, an entry without a name or a value is logged and left out, and one
    whose value is ``None`` is left out quietly.
    """
    if not isinstance(metrics, list | tuple):
        logger.error("metrics() must return a list of dicts, got %r", type(metrics).__name__)
        return ""
    lines: list[str] = []
    for metric in metrics:
        name = metric.get("name") if isinstance(metric, dict) else None
        if not isinstance(name, str) or not _METRIC_NAME.fullmatch(name):
            logger.error("metrics(): an entry has no valid 'name' (like 'job_queue_size')")
            continue
        if "value" not in metric:
            logger.error("metrics(): the metric %s has no 'value'", name)
            continue
        if metric["value"] is None:
            continue
        try:
            value = _number(float(metric["value"]))
        except (TypeError, ValueError):
            logger.error("metrics(): the value of %s is not a number", name)
            continue
        description = str(metric.get("description", "")).replace("\\", r"\\").replace("\n", r"\n")
        labels = metric.get("labels") or {}
        _family(lines, name, "gauge", description)
        label_text = _labels(**{str(k): str(v) for k, v in labels.items()}) if labels else ""
        lines.append(f"{name}{label_text} {value}")
    return "\n".join(lines) + "\n" if lines else ""


async def metrics(request: Request) -> Response:
    call_metrics: CallMetrics = request.app.state.metrics
    text = call_metrics.render()
    instance = request.app.state.runtime.instance
    custom = getattr(instance, "metrics", None)
    if callable(custom):
        try:
            text += render_custom(await run_in_threadpool(custom))
        except Exception:
            logger.exception("the job's metrics() failed; its metrics are left out")
    return Response(text, media_type=CONTENT_TYPE)


routes = [Route("/metrics", metrics, methods=["GET"])]
