"""The wrapper's settings, read from the environment."""

from __future__ import annotations

import pytest

from racetrack_plugins.python3.wrapper import WrapperError, WrapperSettings


def test_settings_come_from_the_environment():
    environ = {
        "JOB_NAME": "primer",
        "JOB_VERSION": "0.0.1",
        "JOB_DEPLOYMENT_TIMESTAMP": "1700000000",
        "JOB_MAX_BODY_BYTES": "1024",
    }
    settings = WrapperSettings.from_env(environ, max_concurrency=2, home_page="/api/v1/x")
    assert settings == WrapperSettings("primer", "0.0.1", 1700000000, 1024, 2, "/api/v1/x")


def test_the_concurrency_settings_come_from_the_environment_unless_given():
    environ = {"JOB_MAX_CONCURRENCY": "3", "JOB_MAX_CONCURRENCY_QUEUE": "10"}
    settings = WrapperSettings.from_env(environ)
    assert (settings.max_concurrency, settings.max_concurrency_queue) == (3, 10)
    given = WrapperSettings.from_env(environ, max_concurrency=1, max_concurrency_queue=0)
    assert (given.max_concurrency, given.max_concurrency_queue) == (1, 0)


def test_defaults():
    settings = WrapperSettings.from_env({})
    assert (settings.deployment_timestamp, settings.max_body_bytes) == (0, 16 * 1024 * 1024)
    assert (settings.max_concurrency, settings.home_page) == (None, "/docs")
    assert settings.max_concurrency_queue is None


@pytest.mark.parametrize(
    ("environ", "options", "message"),
    [
        ({"JOB_DEPLOYMENT_TIMESTAMP": "yesterday"}, {}, "JOB_DEPLOYMENT_TIMESTAMP='yesterday'"),
        ({}, {"home_page": "docs"}, "home page 'docs' must start with '/'"),
        ({}, {"max_concurrency": 0}, "max concurrency must be 1 or more, got 0"),
        ({}, {"max_concurrency_queue": -1}, "max concurrency queue must be 0 or more, got -1"),
        ({"JOB_MAX_CONCURRENCY_QUEUE": "ten"}, {}, "JOB_MAX_CONCURRENCY_QUEUE='ten'"),
    ],
)
def test_wrong_settings_are_clear_errors(environ, options, message):
    with pytest.raises(WrapperError, match=message):
        WrapperSettings.from_env(environ, **options)


def test_the_replica_name_comes_from_the_target():
    assert WrapperSettings.from_env({"JOB_REPLICA": "rt-primer-1-0"}).replica == "rt-primer-1-0"
    assert WrapperSettings.from_env({}).replica == ""
