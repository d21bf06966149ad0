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


def test_the_platform_builds_its_apps_with_its_own_route_behind_the_token_check(
    tmp_path: Path,
) -> None:
    import importlib.util
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
        from starlette.testclient import TestClient

    from racetrack_core.lifecycle.accounts import ensure_admin, issue_token
    from racetrack_core.storage.database import connect, migrate
    from racetrack_core.storage.models import SubjectKind

    spec = importlib.util.spec_from_file_location("custom_platform", SAMPLE / "custom_platform.py")
    assert spec is not None
    assert spec.loader is not None
    platform = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(platform)

    engine = connect(f"sqlite:///{tmp_path / 'racetrack.db'}")
    migrate(engine)
    ensure_admin(engine, tmp_path, "a password for the test")
    token = issue_token(engine, SubjectKind.USER, "admin")
    engine.dispose()

    lifecycle, pub = platform.create_apps(tmp_path)
    assert pub is not None
    with TestClient(lifecycle) as client:
        assert client.get("/api/v1/plugins/acme/queues").status_code == 401
        answer = client.get(
            "/lifecycle/api/v1/plugins/acme/queues", headers={"X-Racetrack-Auth": token}
        )
        assert answer.json() == {"queues": ["nightly", "hourly"]}
        versions = client.get(
            "/api/v1/plugin/job_type/versions", headers={"X-Racetrack-Auth": token}
        ).json()
        assert "acme-batch:1.0.0" in versions
