"""The original wrapper's way to serve a class from a program of one's own.

``serve_job_class(Job)`` makes the instance in the background (the probes answer meanwhile);
``serve_job_instance(job)`` serves an instance already made. Both listen on ``0.0.0.0`` at
``JOB_PORT`` (7000 by default) and block until the server stops.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

from .settings import DEFAULT_PORT, WrapperSettings, env_int

__all__ = ["serve_job_class", "serve_job_instance"]


def serve_job_class(entrypoint_class: type) -> None:
    """Serve ``entrypoint_class``; its ``__init__`` runs after the server has started."""
    _serve(entrypoint_class, None)


def serve_job_instance(entrypoint: object) -> None:
    """Serve an instance that is ready already."""
    _serve(type(entrypoint), entrypoint)


def _serve(cls: type, instance: object | None) -> None:
    import uvicorn

    from .app import create_class_app
    from .logs import configure_logs

    configure_logs()
    source = inspect.getsourcefile(cls)
    job_dir = Path(source).resolve().parent if source else Path.cwd()
    app = create_class_app(cls, job_dir, WrapperSettings.from_env(), instance)
    port = env_int(os.environ, "JOB_PORT", DEFAULT_PORT)
    uvicorn.run(app, host="0.0.0.0", port=port, timeout_graceful_shutdown=3, log_config=None)  # noqa: S104
