"""The python3 job type's wrapper: serves the user's class inside a job process.

Run as ``python -m racetrack_plugins.python3.wrapper --entrypoint-path entrypoint.py``; embed with
``create_app(entrypoint_path, entrypoint_class, job_dir, settings)``. Modules, one concept each:
``entrypoint`` (loading the class), ``signature`` (parameters and argument checks), ``runtime``
(the instance made in the background), ``router`` (the fast path to the calls), ``calls``
(``POST /api/v1/<endpoint>``), ``workers`` (threads for ``def`` methods), ``limiter``
(``max_concurrency``), ``encoding`` (results as JSON), ``parameters`` and ``static`` (``GET
/api/v1/...``), ``health`` (probes), ``metrics``, ``openapi``, ``swagger`` (the docs page),
``app`` (the factory) and ``__main__`` (the command).
"""

from __future__ import annotations

from .app import create_app
from .errors import EntrypointError, WrapperError
from .settings import WrapperSettings

__all__ = ["EntrypointError", "WrapperError", "WrapperSettings", "create_app"]
