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
    #: Which instance of a replicated job this is (``JOB_REPLICA``, set by the target).
    replica: str = ""

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        max_concurrency: int | None = None,
        home_page: str = "/docs",
    ) -> WrapperSettings:
        """Read ``JOB_NAME``, ``JOB_VERSION``, ``JOB_DEPLOYMENT_TIMESTAMP`` and
        ``JOB_MAX_BODY_BYTES``; the keyword arguments come from the command line."""
        env = os.environ if environ is None else environ
        if not home_page.startswith("/"):
            raise WrapperError(f"home page '{home_page}' must start with '/', like /docs")
        if max_concurrency is not None and max_concurrency < 1:
            raise WrapperError(f"max concurrency must be 1 or more, got {max_concurrency}")
        return cls(
            job_name=env.get("JOB_NAME", ""),
            job_version=env.get("JOB_VERSION", ""),
            deployment_timestamp=env_int(env, "JOB_DEPLOYMENT_TIMESTAMP", 0),
            replica=env.get("JOB_REPLICA", ""),
            max_body_bytes=env_int(env, "JOB_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
            max_concurrency=max_concurrency,
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
