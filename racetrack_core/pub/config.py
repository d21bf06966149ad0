"""Pub's settings: one typed, frozen object, read once (from the environment or given in code).

This is where Pub's settings are declared, once. Those that a Racetrack server sets too carry
the name of that server setting (:func:`server_settings`); ``racetrack_core.settings`` derives
them from here (``RACETRACK_PUB_AUTH_CACHE_TTL``, ``pub_auth_cache_ttl`` in ``config.yaml``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from typing import Any

#: The metadata key of a field's server setting name.
SERVER_SETTING = "racetrack_setting"


def _served(default: Any, name: str) -> Any:
    """A field that a Racetrack server also sets, as its setting ``name``."""
    return field(default=default, metadata={SERVER_SETTING: name})


@dataclass(frozen=True)
class PubConfig:
    """What Pub needs to know; every duration is in seconds.

    The two auth TTLs bound how long a revoked token or a stopped job keeps working through
    Pub: ``auth_cache_ttl`` always, ``auth_stale_ttl`` only while Lifecycle cannot be reached.
    """

    lifecycle_url: str = "http://127.0.0.1:7102"
    #: A permission answer younger than this is used without asking Lifecycle again.
    auth_cache_ttl: float = _served(5.0, "pub_auth_cache_ttl")
    #: While Lifecycle is unreachable, a granted permission is still used up to this age.
    auth_stale_ttl: float = _served(60.0, "pub_auth_stale_ttl")
    #: Distinct (job, version, path, token) answers kept; the oldest are dropped first.
    auth_cache_size: int = 10_000
    #: How long to wait for Lifecycle's answer to ``can-call-job``.
    lifecycle_timeout: float = 10.0
    #: How long a job may stay silent (before its answer starts, or between two reads of it).
    upstream_timeout: float = _served(300.0, "pub_upstream_timeout")
    #: How long a caller may take to send a request's line and headers, from its first byte;
    #: then Pub answers 408 and closes the connection.
    request_head_timeout: float = _served(15.0, "pub_request_head_timeout")
    #: How long connecting to a job may take.
    connect_timeout: float = 5.0
    #: Idle keep-alive connections to jobs are closed after this; keep it below the jobs' own
    #: keep-alive timeout (uvicorn's is 5 s) so that Pub never reuses a connection being closed.
    upstream_keepalive_timeout: float = 4.0
    #: A replicated job's instances: how often Pub asks each for ``/ready``, and how long it
    #: waits for the answer before leaving the instance out of the rotation.
    instance_probe_interval: float = _served(1.0, "pub_instance_probe_interval")
    instance_probe_timeout: float = _served(2.0, "pub_instance_probe_timeout")
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
    async_call_lifetime: float = _served(4 * 3600.0, "async_call_lifetime")
    #: How long ``/async/task/{id}/poll`` waits for the answer before saying "still ongoing".
    async_poll_timeout: float = _served(30.0, "pub_async_poll_timeout")
    #: Attempts at an asynchronous call when the job refuses or drops the connection before
    #: answering, and the seconds between two attempts.
    async_max_attempts: int = _served(3, "pub_async_max_attempts")
    async_retry_delay: float = _served(10.0, "pub_async_retry_delay")
    #: While Pub runs an asynchronous call it touches the stored task this often; a task
    #: untouched for ``async_adopt_after`` (its Pub stopped mid-call) is run again.
    async_heartbeat_interval: float = 10.0
    async_adopt_after: float = _served(30.0, "pub_async_adopt_after")
    #: Largest request body, and largest job answer, an asynchronous call keeps (bytes).
    async_max_body: int = 16 * 1024 * 1024
    #: Seconds between two purges of expired tasks.
    async_purge_interval: float = 300.0
    #: Seconds between two reports of the jobs' last call times to Lifecycle (one batch each).
    call_time_interval: float = _served(10.0, "pub_call_time_interval")

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


def server_settings() -> dict[str, Field[Any]]:
    """The fields of :class:`PubConfig` that a Racetrack server sets, by their setting names."""
    return {
        setting.metadata[SERVER_SETTING]: setting
        for setting in fields(PubConfig)
        if SERVER_SETTING in setting.metadata
    }
