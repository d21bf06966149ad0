"""The wrapper's settings: read once from the environment, then from command-line options."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import WrapperError

DEFAULT_PORT = 7000
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class WrapperSettings:
    """What the wrapper needs to know besides the entrypoint itself."""

    job_name: str = ""
    job_version: str = ""
    deployment_timestamp: int = 0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_concurrency: int | None = None
    home_page: str = "/docs"
    #: Calls that may wait for a slot when ``max_concurrency`` are running; ``None``: no bound.
    max_concurrency_queue: int | None = None
    #: Which instance of a replicated job this is (``JOB_REPLICA``, set by the target).
    replica: str = ""

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        max_concurrency: int | None = None,
        max_concurrency_queue: int | None = None,
        home_page: str = "/docs",
    ) -> WrapperSettings:
        """Read ``JOB_NAME``, ``JOB_VERSION``, ``JOB_DEPLOYMENT_TIMESTAMP`` and
        ``JOB_MAX_BODY_BYTES``; the keyword arguments come from the command line, and when they
        are not given, ``JOB_MAX_CONCURRENCY`` and ``JOB_MAX_CONCURRENCY_QUEUE``."""
        env = os.environ if environ is None else environ
        if not home_page.startswith("/"):
            raise WrapperError(f"home page '{home_page}' must start with '/', like /docs")
        if max_concurrency is None and env.get("JOB_MAX_CONCURRENCY", "").strip():
            max_concurrency = env_int(env, "JOB_MAX_CONCURRENCY", 0)
        if max_concurrency_queue is None and env.get("JOB_MAX_CONCURRENCY_QUEUE", "").strip():
            max_concurrency_queue = env_int(env, "JOB_MAX_CONCURRENCY_QUEUE", 0)
        if max_concurrency is not None and max_concurrency < 1:
            raise WrapperError(f"max concurrency must be 1 or more, got {max_concurrency}")
        if max_concurrency_queue is not None and max_concurrency_queue < 0:
            raise WrapperError(
                f"max concurrency queue must be 0 or more, got {max_concurrency_queue}"
            )
        return cls(
            job_name=env.get("JOB_NAME", ""),
            job_version=env.get("JOB_VERSION", ""),
            deployment_timestamp=env_int(env, "JOB_DEPLOYMENT_TIMESTAMP", 0),
            replica=env.get("JOB_REPLICA", ""),
            max_body_bytes=env_int(env, "JOB_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
            max_concurrency=max_concurrency,
            max_concurrency_queue=max_concurrency_queue,
            home_page=home_page,
        )


def env_int(env: Mapping[str, str], name: str, default: int) -> int:
    """An integer environment variable; unset or empty means ``default``."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise WrapperError(f"environment variable {name}={raw!r} is not an integer") from None
