"""D12: a job without its entrypoint file fails with that cause, not with an empty crash report.

It used to crash five times (about 25 s of restarts), and the deployment's error ended with
"Last lines of its output:" and nothing after it: the output reached only the build log.
"""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from racetrack_core.testing.server import RacetrackServer


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_missing_entrypoint_file_is_the_deployments_error(
    shared_server: RacetrackServer, tmp_path: Path
) -> None:
    (tmp_path / "job.yaml").write_text(
        textwrap.dedent(
            """\
            name: no-entrypoint
            version: 0.0.1
            owner_email: owner@example.com
            jobtype: python3:latest
            jobtype_extra:
              entrypoint_path: entrypoint.py
              entrypoint_class: JobEntrypoint
            """
        )
    )
    (tmp_path / "README.md").write_text("the entrypoint is missing\n")
    started = time.monotonic()
    record = shared_server.deploy_folder(tmp_path, timeout=90)
    assert record["status"] == "failed", record
    error = record["error"]
    assert "entrypoint file 'entrypoint.py' (jobtype_extra.entrypoint_path) not found" in error
    assert not error.rstrip().endswith(":"), error
    assert "crashed" not in error, error  # refused before the first start, not after five
    assert time.monotonic() - started < 60
