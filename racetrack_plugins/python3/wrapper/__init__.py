"""The python3 job type's wrapper: serves the user's class inside a job process.

Run as ``python -m racetrack_plugins.python3.wrapper --entrypoint-path entrypoint.py``; embed with
``create_app(entrypoint_path, entrypoint_class, job_dir, settings)``. Modules, one concept each:
``entrypoint`` (loading the class), ``signature`` (parameters and argument checks), ``runtime``
(the instance made in the background), ``router`` (the fast path to the calls), ``calls``
(``POST /api/v1/<endpoint>``), ``workers`` (threads for ``def`` methods), ``limiter``
(``max_concurrency``), ``encoding`` (results as JSON), ``parameters`` and ``static`` (``GET
/api/v1/...``), ``health`` (probes), ``metrics``, ``openapi``, ``swagger`` (the docs page),
``app`` (the factory), ``chaining`` (``call_job``: calling other jobs through Pub) and
``__main__`` (the command). For the original wrapper's features: ``auxiliary``
(``auxiliary_endpoints_v2``), ``webview`` (``webview_app``), ``context`` (``request_context``),
``logs`` (``LOG_STRUCTURED``, ``LOG_CALLER_NAME``).

Job code calls other jobs with ``from racetrack_job_wrapper import call_job`` (the package's
name inside a job's environment). The original wrapper's public modules work under their own
names too: ``call`` (``call_job(self, ...)``), ``entrypoint`` (``JobEntrypoint``),
``endpoint_config`` (``EndpointConfig``), ``standalone`` (``serve_job_class``) and
``log.logs`` (``get_logger``).
"""

from __future__ import annotations

from .app import create_app
from .chaining import JobCallError, call_job, call_job_async, current_tracing_id
from .errors import EntrypointError, WrapperError
from .settings import WrapperSettings

__all__ = [
    "EntrypointError",
    "JobCallError",
    "WrapperError",
    "WrapperSettings",
    "call_job",
    "call_job_async",
    "create_app",
    "current_tracing_id",
]
