"""``sample/embedding/custom_platform.py``: a platform that embeds Racetrack's core."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[2] / "sample" / "embedding"


def run_sample(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SAMPLE / "custom_platform.py"), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_the_sample_validates_its_manifest_with_its_own_job_type() -> None:
    done = run_sample()
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("plugins: acme, ")
    assert "python3" in lines[0]
    assert lines[1].startswith("job types: acme-batch:1.0.0, ")
    assert lines[2] == "valid: nightly-report 1.2.0 (job type acme-batch:1.0.0)"
    assert "  queue: nightly" in lines[3:]


def test_the_sample_reports_problems_found_by_its_own_plugin(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(
        "name: report\nowner_email: someone@example.com\njobtype: acme-batch\n"
        "jobtype_extra:\n  queue: weekly\n  command: ls\n",
        encoding="utf-8",
    )
    done = run_sample(str(tmp_path))
    assert done.returncode == 1
    [problem] = done.stderr.splitlines()
    assert problem.startswith("invalid: field 'jobtype_extra.queue' (line 5): 'weekly' is not one")

    (tmp_path / "job.yaml").write_text(
        "name: report\nowner_email: someone@example.com\njobtype: acme-batch\n"
        "jobtype_extra:\n  queue: hourly\n  command: ls\n",
        encoding="utf-8",
    )
    done = run_sample(str(tmp_path))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "invalid: field 'owner_email' (line 2): 'someone@example.com' is not an Acme address "
        "(@acme.example)"
    ]
