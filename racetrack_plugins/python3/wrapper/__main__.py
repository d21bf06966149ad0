"""``python -m racetrack_plugins.python3.wrapper``: serve a job's class over HTTP with uvicorn.

A job's environment holds a standalone copy of this package named ``racetrack_job_wrapper``.

uvicorn's access log is off unless ``--access-log``: Pub already logs and counts every call, and
one log line per call cost a small job about a third of its throughput. The log's format follows
``LOG_STRUCTURED`` and ``LOG_CALLER_NAME`` (``logs``).

The original wrapper's command line, ``python -m racetrack_job_wrapper run <entrypoint_path>
[<entrypoint_class>] [--port N]``, is accepted too.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from .app import create_app
from .errors import WrapperError
from .logs import configure_logs, parse_level
from .settings import DEFAULT_PORT, WrapperSettings, env_int


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__ or 'racetrack_job_wrapper'}",
        description="Serve the perform method of a Python class as a Racetrack job.",
    )
    parser.add_argument(
        "--entrypoint-path", required=True, help="Python file, relative to --job-dir"
    )
    parser.add_argument(
        "--entrypoint-class", help="class to serve (default: the only one with perform)"
    )
    parser.add_argument(
        "--job-dir", type=Path, default=Path.cwd(), help="job directory (default: .)"
    )
    parser.add_argument(
        "--host",
        default=os.environ.get("JOB_HOST") or "127.0.0.1",
        help="address to listen on (default: $JOB_HOST, else 127.0.0.1)",
    )
    parser.add_argument("--port", type=int, help=f"port (default: $JOB_PORT, else {DEFAULT_PORT})")
    parser.add_argument("--home-page", default="/docs", help="where / redirects (default: /docs)")
    parser.add_argument("--max-concurrency", type=int, help="calls at once; more wait in a queue")
    parser.add_argument(
        "--max-concurrency-queue",
        type=int,
        help="calls that may wait when --max-concurrency are running; more get 429",
    )
    parser.add_argument(
        "--log-level", help="log level: debug, info, warning, error (default: $LOG_LEVEL or info)"
    )
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="log one line per request (default: off; Pub logs the calls)",
    )
    return parser.parse_args(argv)


def original_command(argv: Sequence[str]) -> list[str]:
    """``run PATH [CLASS] [--port N] [--manifest-path M]`` in today's options."""
    positional: list[str] = []
    options: list[str] = []
    rest = list(argv[1:])
    while rest:
        item = rest.pop(0)
        if item == "--port" and rest:
            options += ["--port", rest.pop(0)]
        elif item == "--manifest-path" and rest:
            rest.pop(0)  # the manifest's settings come from the command line here
        elif item.startswith("--port="):
            options.append(item)
        elif not item.startswith("--manifest-path"):
            positional.append(item)
    if positional:
        options += ["--entrypoint-path", positional[0]]
    if len(positional) > 1 and positional[1]:
        options += ["--entrypoint-class", positional[1]]
    return [*options, "--host", "0.0.0.0"]  # noqa: S104 - the original listened on every address


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:
        argv = original_command(argv)
    arguments = parse_arguments(argv)
    try:
        configure_logs(arguments.log_level)
        port = arguments.port or env_int(os.environ, "JOB_PORT", DEFAULT_PORT)
        settings = WrapperSettings.from_env(
            max_concurrency=arguments.max_concurrency,
            max_concurrency_queue=arguments.max_concurrency_queue,
            home_page=arguments.home_page,
        )
        job_dir = arguments.job_dir.resolve()
        # The user's code opens its files relative to the job directory, as in a container.
        os.chdir(job_dir)
        app = create_app(arguments.entrypoint_path, arguments.entrypoint_class, job_dir, settings)
    except (WrapperError, ValueError) as error:
        logging.getLogger("racetrack.job").debug("start-up failed", exc_info=True)
        print(f"error: {error}", file=sys.stderr)
        if error.__cause__ is not None:
            logging.getLogger("racetrack.job").error("caused by", exc_info=error.__cause__)
        return 1
    uvicorn.run(
        app,
        host=arguments.host,
        port=port,
        log_level=parse_level(arguments.log_level or os.environ.get("LOG_LEVEL") or "info"),
        access_log=arguments.access_log,
        timeout_graceful_shutdown=3,
        log_config=None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
