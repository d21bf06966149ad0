"""The job's log lines: the call's tracing id and caller on each, plain or structured."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from racetrack_plugins.python3.wrapper import chaining, context, logs


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def log_in_a_call(environ: dict[str, str], *, error: bool = False) -> str:
    stream = io.StringIO()
    logs.configure_logs("info", environ=environ, stream=stream)
    scope = {
        "type": "http",
        "headers": [(b"x-request-tracing-id", b"trace-1"), (b"x-caller-name", b"Job family a b")],
    }
    tracing = chaining.bind_tracing_id(scope)
    request_context = context.RequestContext()
    bound = request_context.bind(scope)
    try:
        logger = logging.getLogger("racetrack_job_entrypoint")
        if error:
            try:
                raise KeyError("k")
            except KeyError:
                logger.exception("failed %s", 1)
        else:
            logger.info("adding %s", 2)
    finally:
        request_context.reset(bound)
        chaining.reset_tracing_id(tracing)
    logging.getLogger("racetrack_job_entrypoint").info("outside")
    return stream.getvalue()


@pytest.mark.usefixtures("restore_root_logging")
def test_plain_lines_end_with_the_tracing_id() -> None:
    first, outside = log_in_a_call({}).splitlines()
    assert first.endswith("INFO racetrack_job_entrypoint: adding 2, tracing_id=trace-1")
    assert outside.endswith("outside")


@pytest.mark.usefixtures("restore_root_logging")
def test_the_caller_is_added_with_log_caller_name_quoted_when_it_has_spaces() -> None:
    first = log_in_a_call({"LOG_CALLER_NAME": "true"}).splitlines()[0]
    assert first.endswith('adding 2, tracing_id=trace-1, caller_name="Job family a b"')


@pytest.mark.usefixtures("restore_root_logging")
def test_structured_lines_are_json_with_the_traceback() -> None:
    text = log_in_a_call({"LOG_STRUCTURED": "yes"}, error=True)
    failed, outside = (json.loads(line) for line in text.splitlines())
    assert (failed["lvl"], failed["msg"], failed["tracing_id"]) == ("ERROR", "failed 1", "trace-1")
    assert "KeyError: 'k'" in failed["exc_info"]
    assert "caller_name" not in failed
    assert failed["time"].endswith("Z")
    assert "tracing_id" not in outside


def test_log_levels_as_the_original_named_them() -> None:
    assert logs.parse_level("warn") == logging.WARNING
    assert logs.parse_level("DEBUG") == logging.DEBUG
    with pytest.raises(ValueError, match="log level 'loud' is unknown"):
        logs.parse_level("loud")
