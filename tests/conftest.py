"""Suite-wide rules and fixtures.

In CI (CI=true) a skipped test is a failure, so nothing is silently left out: tests that need
Docker, PostgreSQL, Chromium or Go skip on a developer machine without them; CI installs all of
them, so a skip there means something is broken.

``database_url`` runs a test on SQLite and on PostgreSQL. PostgreSQL comes from
``RACETRACK_TEST_POSTGRES_URL`` (a role that may create databases); each test gets a database
of its own, dropped afterwards. `.ci/run` starts PostgreSQL and sets the variable.

``second_engine`` (``tests/support/dockerd.py``) is a second dockerd of the session's own,
listening on loopback TCP only, for what reaches an engine through a setting.

Hypothesis (``tests/security/test_fuzz_*.py``) runs under a profile: ``ci`` when CI=true (few
examples, derandomized so that a run repeats), ``dev`` otherwise, or the one HYPOTHESIS_PROFILE
names (``long`` for a fuzzing session; see docs/security.md).
"""

from __future__ import annotations

import os
import platform
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from racetrack_core.storage.database import connect
from tests.support.dockerd import second_engine

__all__ = ["second_engine"]  # a session fixture: a second dockerd on loopback TCP


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


_SLOW_EXAMPLES = [HealthCheck.too_slow]
settings.register_profile(
    "ci", max_examples=150, derandomize=True, database=None, suppress_health_check=_SLOW_EXAMPLES
)
settings.register_profile("dev", max_examples=100, suppress_health_check=_SLOW_EXAMPLES)
settings.register_profile("long", max_examples=5000, suppress_health_check=_SLOW_EXAMPLES)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if in_ci() else "dev"))


def pytest_report_header() -> str:
    return f"python {platform.python_version()} at {sys.executable}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if not in_ci() or reporter is None:
        return
    skipped = reporter.stats.get("skipped", [])
    if skipped and exitstatus == 0:
        reporter.write_line(f"CI=true: {len(skipped)} test(s) skipped; skips fail in CI", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


POSTGRES_URL = os.environ.get("RACETRACK_TEST_POSTGRES_URL", "")


def _admin_dsn(url: str) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database, SQLite file or fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'racetrack.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("RACETRACK_TEST_POSTGRES_URL is not set (PostgreSQL is not available)")
    name = f"rt_test_{uuid.uuid4().hex[:12]}"
    admin = _admin_dsn(POSTGRES_URL)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        _drop_database(admin, name)


def _drop_database(admin: str, name: str) -> None:
    """Drop a test database, also while an autovacuum worker is in it.

    PostgreSQL 15 refuses `DROP DATABASE ... WITH (FORCE)` to a role that is not a superuser
    when an autovacuum worker happens to be working in the database (the worker has no role,
    so "must be a member of the role whose process is being terminated"). A plain
    `DROP DATABASE` stops autovacuum workers itself, so end our own sessions and use it.
    """
    with psycopg.connect(admin, autocommit=True) as conn:
        try:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except psycopg.errors.InsufficientPrivilege:
            pass
        for _ in range(20):
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND usename = current_user AND pid <> pg_backend_pid()",
                (name,),
            )
            try:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                return
            except psycopg.errors.ObjectInUse:
                time.sleep(0.25)
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = connect(database_url)
    yield engine
    engine.dispose()
