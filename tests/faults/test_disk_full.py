"""Faults: the disk fills up while a deployment writes (issue 15).

A small tmpfs needs root to mount, so the server runs under a file size limit instead
(``prlimit --fsize``, RLIMIT_FSIZE): a write past it fails with EFBIG ("File too large") as a
write to a full disk fails with ENOSPC, at the same places. The deployment must fail with an
error that says what happened, leave no half-written source behind, and the server must go on
answering.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from racetrack_core.testing.server import QUICK_ENV, RacetrackServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

LIMIT = 4 * 1024 * 1024


class LimitedServer(RacetrackServer):
    """``racetrack up`` that may write no file larger than LIMIT bytes."""

    def command(self) -> list[str]:
        return ["prlimit", f"--fsize={LIMIT}", "--", *super().command()]


@pytest.fixture
def server(tmp_path: Path) -> LimitedServer:
    if shutil.which("prlimit") is None:
        pytest.skip("prlimit is not installed (Debian package util-linux)")
    return LimitedServer(tmp_path / "racetrack-home", env=QUICK_ENV)


def test_a_build_context_larger_than_the_disk_allows_fails_cleanly(
    server: LimitedServer, tmp_path: Path
) -> None:
    job = tmp_path / "job"
    job.mkdir()
    (job / "job.yaml").write_text(
        textwrap.dedent(
            """\
            name: too-big
            version: 0.0.1
            owner_email: owner@example.com
            jobtype: python3:latest
            jobtype_extra:
              entrypoint_path: entrypoint.py
            """
        )
    )
    (job / "entrypoint.py").write_text(
        "class Job:\n    def perform(self) -> int:\n        return 1\n"
    )
    (job / "model.bin").write_bytes(b"\0" * (LIMIT + 1024 * 1024))  # compresses to little
    with server:
        server.login()
        record = server.deploy_folder(job, timeout=120)
        assert record["status"] == "failed", record
        assert record["error"] == "build context could not be unpacked: File too large", record
        assert not list((server.home / "jobs").glob("too-big/**/model.bin"))
        assert server.api("GET", "/job").json() == []  # the server goes on answering
