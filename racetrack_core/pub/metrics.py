"""Pub's Prometheus metrics, in a registry of its own (one per app, none global).

Labels name a job only once Lifecycle has vouched for it, so that callers asking for made-up
job names cannot grow the number of series without bound.

The hot path only bumps plain Python numbers (a call costs a dictionary lookup, three additions
and a bisection, where ``prometheus_client``'s labelled children cost a lock and a method call
per sample); :meth:`Metrics.render` turns them into metric families that ``prometheus_client``
writes out, so the text is the same as with its own counters, ``_created`` samples included.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

JOB_LABELS = ("job_name", "job_version")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
CACHE_RESULTS = ("hit", "miss", "stale")

Labels = tuple[str, ...]


class _Counter:
    """Counts per label values, each series with the time it was created."""

    __slots__ = ("created", "values")

    def __init__(self) -> None:
        self.values: dict[Labels, float] = {}
        self.created: dict[Labels, float] = {}

    def inc(self, labels: Labels) -> None:
        if labels in self.values:
            self.values[labels] += 1
        else:
            self.values[labels] = 1
            self.created[labels] = time.time()

    def family(self, name: str, documentation: str, label_names: Labels) -> Metric:
        family = CounterMetricFamily(name, documentation, labels=label_names)
        for labels, value in self.values.items():
            family.add_metric(labels, value, created=self.created[labels])
        return family


class _CallSeries:
    """What one job version's answered calls add up to: counts, statuses and latencies."""

    __slots__ = ("buckets", "count", "created", "last_call", "statuses", "total_seconds")

    def __init__(self) -> None:
        self.count = 0
        #: When the last call was answered (unix seconds), reported to Lifecycle (calltimes).
        self.last_call = 0.0
        self.total_seconds = 0.0
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.statuses: dict[int, int] = {}
        self.created = time.time()


class Metrics:
    """Counters and histograms of one Pub app; ``render()`` gives the Prometheus text."""

    def __init__(self) -> None:
        self._calls: dict[tuple[str, str], _CallSeries] = {}
        self._status_created: dict[tuple[str, str, int], float] = {}
        self._failed_calls = _Counter()  # calls counted in requests_total, never answered
        self._upstream_errors = _Counter()
        self._auth_failures = _Counter()
        self._lifecycle_calls = _Counter()
        self._lifecycle_errors = _Counter()
        self._cache = _Counter()
        for result in CACHE_RESULTS:
            self._cache.values[(result,)] = 0
            self._cache.created[(result,)] = time.time()
        for counter in (self._lifecycle_calls, self._lifecycle_errors):
            counter.values[()] = 0
            counter.created[()] = time.time()
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_Collector(self))

    def record_call(self, job_name: str, job_version: str, status: int, seconds: float) -> None:
        """Count a call a job answered: its status and how long until the answer began."""
        series = self._calls.get((job_name, job_version))
        if series is None:
            series = self._calls[(job_name, job_version)] = _CallSeries()
        series.count += 1
        series.last_call = time.time()
        series.total_seconds += seconds
        series.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        statuses = series.statuses
        if status in statuses:
            statuses[status] += 1
        else:
            statuses[status] = 1
            self._status_created[(job_name, job_version, status)] = time.time()

    def last_calls(self) -> dict[tuple[str, str], float]:
        """When each job version's last answered call was, by (job name, resolved version)."""
        return {key: series.last_call for key, series in list(self._calls.items())}

    def record_upstream_error(self, job_name: str, job_version: str, kind: str) -> None:
        """Count a call that failed between Pub and the job."""
        self._failed_calls.inc((job_name, job_version))
        self._upstream_errors.inc((job_name, job_version, kind))

    def record_auth_failure(self, job_name: str, job_version: str, status: int) -> None:
        """Count a call Lifecycle refused (pass '-' for a job not known to exist)."""
        self._auth_failures.inc((job_name, job_version, str(status)))

    def record_cache(self, result: str) -> None:
        """Count a permission-cache lookup: ``hit``, ``miss`` or ``stale``."""
        self._cache.values[(result,)] += 1

    def record_lifecycle_call(self) -> None:
        """Count a permission check asked of Lifecycle."""
        self._lifecycle_calls.values[()] += 1

    def record_lifecycle_error(self) -> None:
        """Count a permission check that Lifecycle did not answer usefully."""
        self._lifecycle_errors.values[()] += 1

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return bytes(generate_latest(self.registry))

    def families(self) -> Iterator[Metric]:
        """Every metric, as ``prometheus_client`` metric families."""
        requests = CounterMetricFamily(
            "pub_job_proxy_requests", "Calls forwarded to a job", labels=JOB_LABELS
        )
        codes = CounterMetricFamily(
            "pub_job_proxy_response_codes",
            "Status codes of the answers forwarded from a job",
            labels=(*JOB_LABELS, "status"),
        )
        latency = HistogramMetricFamily(
            "pub_job_call_response_time_seconds",
            "Time from a call's arrival to the start of the job's answer",
            labels=JOB_LABELS,
        )
        job_keys: list[Labels] = list(self._calls)
        job_keys += [key for key in self._failed_calls.values if key not in self._calls]
        for key in job_keys:
            series = self._calls.get((key[0], key[1]))
            failed = self._failed_calls.values.get(key, 0)
            created = min(
                series.created if series else float("inf"),
                self._failed_calls.created.get(key, float("inf")),
            )
            requests.add_metric(key, (series.count if series else 0) + failed, created=created)
            if series is None:
                continue
            for status, count in series.statuses.items():
                codes.add_metric(
                    (*key, str(status)),
                    count,
                    created=self._status_created[(key[0], key[1], status)],
                )
            cumulative, buckets = 0, []
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), series.buckets, strict=True):
                cumulative += count
                buckets.append((_bound(bound), float(cumulative)))
            latency.add_metric(key, buckets, series.total_seconds)
            labels = dict(zip(JOB_LABELS, key, strict=True))
            latency.samples.append(Sample(latency.name + "_created", labels, series.created))
        yield requests
        yield codes
        yield latency
        yield self._upstream_errors.family(
            "pub_job_proxy_errors",
            "Calls a job did not answer (kind: connection_refused, connection_broken, timeout)",
            (*JOB_LABELS, "kind"),
        )
        yield self._auth_failures.family(
            "pub_auth_failed",
            "Calls refused by Lifecycle (job labels are '-' unless the job is known to exist)",
            (*JOB_LABELS, "status"),
        )
        yield self._lifecycle_calls.family(
            "pub_lifecycle_calls", "Permission checks asked of Lifecycle", ()
        )
        yield self._lifecycle_errors.family(
            "pub_lifecycle_errors", "Permission checks Lifecycle did not answer", ()
        )
        yield self._cache.family(
            "pub_lifecycle_cache",
            "Permission cache lookups (result: hit, miss, stale)",
            ("result",),
        )


def _bound(bound: float) -> str:
    """A bucket's ``le`` label as prometheus_client writes it (``1.0``, ``+Inf``)."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


class _Collector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics.families()
