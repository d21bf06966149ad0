"""Pub's Prometheus metrics, in a registry of its own (one per app, none global).

Labels name a job only once Lifecycle has vouched for it, so that callers asking for made-up
job names cannot grow the number of series without bound.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

JOB_LABELS = ("job_name", "job_version")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """Counters and histograms of one Pub app; ``render()`` gives the Prometheus text."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.calls = Counter(
            "pub_job_proxy_requests", "Calls forwarded to a job", JOB_LABELS, registry=r
        )
        self.status_codes = Counter(
            "pub_job_proxy_response_codes",
            "Status codes of the answers forwarded from a job",
            (*JOB_LABELS, "status"),
            registry=r,
        )
        self.latency = Histogram(
            "pub_job_call_response_time_seconds",
            "Time from a call's arrival to the start of the job's answer",
            JOB_LABELS,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_errors = Counter(
            "pub_job_proxy_errors",
            "Calls a job did not answer (kind: connection_refused, connection_broken, timeout)",
            (*JOB_LABELS, "kind"),
            registry=r,
        )
        self.auth_failures = Counter(
            "pub_auth_failed",
            "Calls refused by Lifecycle (job labels are '-' unless the job is known to exist)",
            (*JOB_LABELS, "status"),
            registry=r,
        )
        self.lifecycle_calls = Counter(
            "pub_lifecycle_calls", "Permission checks asked of Lifecycle", registry=r
        )
        self.lifecycle_errors = Counter(
            "pub_lifecycle_errors", "Permission checks Lifecycle did not answer", registry=r
        )
        self.cache_lookups = Counter(
            "pub_lifecycle_cache",
            "Permission cache lookups (result: hit, miss, stale)",
            ("result",),
            registry=r,
        )
        # Labelled children, looked up once: .labels() costs more than the increment.
        self._per_call: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
        self._cache_results = {
            result: self.cache_lookups.labels(result) for result in ("hit", "miss", "stale")
        }

    def record_call(self, job_name: str, job_version: str, status: int, seconds: float) -> None:
        """Count a call a job answered: its status and how long until the answer began."""
        children = self._per_call.get((job_name, job_version, status))
        if children is None:
            children = (
                self.calls.labels(job_name, job_version),
                self.latency.labels(job_name, job_version),
                self.status_codes.labels(job_name, job_version, str(status)),
            )
            self._per_call[(job_name, job_version, status)] = children
        children[0].inc()
        children[1].observe(seconds)
        children[2].inc()

    def record_upstream_error(self, job_name: str, job_version: str, kind: str) -> None:
        """Count a call that failed between Pub and the job."""
        self.calls.labels(job_name, job_version).inc()
        self.upstream_errors.labels(job_name, job_version, kind).inc()

    def record_auth_failure(self, job_name: str, job_version: str, status: int) -> None:
        """Count a call Lifecycle refused (pass '-' for a job not known to exist)."""
        self.auth_failures.labels(job_name, job_version, str(status)).inc()

    def record_cache(self, result: str) -> None:
        """Count a permission-cache lookup: ``hit``, ``miss`` or ``stale``."""
        self._cache_results[result].inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return bytes(generate_latest(self.registry))
