"""Suite-wide rules: in CI (CI=true) a skipped test is a failure, so nothing is silently left out.

Tests that need Docker, PostgreSQL, Chromium or Go skip on a developer machine without them;
CI installs all of them, so a skip there means something is broken.
"""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if not in_ci() or reporter is None:
        return
    skipped = reporter.stats.get("skipped", [])
    if skipped and exitstatus == 0:
        reporter.write_line(f"CI=true: {len(skipped)} test(s) skipped; skips fail in CI", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
