"""Pub's settings: one typed, frozen object, read once (from the environment or given in code)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class PubConfig:
    """What Pub needs to know; every duration is in seconds.

    The two auth TTLs bound how long a revoked token or a stopped job keeps working through
    Pub: ``auth_cache_ttl`` always, ``auth_stale_ttl`` only while Lifecycle cannot be reached.
    """

    lifecycle_url: str = "http://127.0.0.1:7102"
    #: A permission answer younger than this is used without asking Lifecycle again.
    auth_cache_ttl: float = 5.0
    #: While Lifecycle is unreachable, a granted permission is still used up to this age.
    auth_stale_ttl: float = 60.0
    #: Distinct (job, version, path, token) answers kept; the oldest are dropped first.
    auth_cache_size: int = 10_000
    #: How long to wait for Lifecycle's answer to ``can-call-job``.
    lifecycle_timeout: float = 10.0
    #: How long a job may stay silent (before its answer starts, or between two reads of it).
    upstream_timeout: float = 300.0
    #: How long connecting to a job may take.
    connect_timeout: float = 5.0
    #: Idle keep-alive connections to jobs are closed after this; keep it below the jobs' own
    #: keep-alive timeout (uvicorn's is 5 s) so that Pub never reuses a connection being closed.
    upstream_keepalive_timeout: float = 4.0
    #: Connections open to all jobs together at most (0 means no limit).
    max_connections: int = 1024
    #: Answers with a declared length up to this many bytes are read whole, then sent at once;
    #: longer or unsized ones are streamed.
    buffer_limit: int = 65_536
    #: The header carrying the request-tracing id (kept if the caller sent one).
    request_tracing_header: str = "X-Request-Tracing-Id"
    #: The services' internal token, for Pub's own calls to Lifecycle (asynchronous calls).
    internal_token: str | None = field(default=None, repr=False)
    #: Asynchronous calls: seconds a task and its answer are kept, then purged.
    async_call_lifetime: float = 4 * 3600.0
    #: How long ``/async/task/{id}/poll`` waits for the answer before saying "still ongoing".
    async_poll_timeout: float = 30.0
    #: Attempts at an asynchronous call when the job refuses or drops the connection before
    #: answering, and the seconds between two attempts.
    async_max_attempts: int = 3
    async_retry_delay: float = 10.0
    #: While Pub runs an asynchronous call it touches the stored task this often; a task
    #: untouched for ``async_adopt_after`` (its Pub stopped mid-call) is run again.
    async_heartbeat_interval: float = 10.0
    async_adopt_after: float = 30.0
    #: Largest request body, and largest job answer, an asynchronous call keeps (bytes).
    async_max_body: int = 16 * 1024 * 1024
    #: Seconds between two purges of expired tasks.
    async_purge_interval: float = 300.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PubConfig:
        """Settings from ``PUB_<FIELD>`` variables (``PUB_LIFECYCLE_URL``...), then defaults."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for setting in fields(cls):
            raw = environ.get(f"PUB_{setting.name.upper()}")
            if raw is None:
                continue
            default = getattr(cls, setting.name)
            kind = str if default is None else type(default)
            try:
                values[setting.name] = kind(raw)
            except ValueError:
                raise ValueError(
                    f"PUB_{setting.name.upper()}={raw!r} is not a valid {kind.__name__}"
                ) from None
        return cls(**values)  # type: ignore[arg-type]
