"""A manifest in the original Racetrack's spellings, deployed with the original client.

``fatman.yaml`` with ``lang:``, ``python:`` and ``image_type:``, as teams bring them, goes
through ``racetrack-client`` 2.35.1 to a real ``racetrack up``: it deploys unchanged, the
client shows the deprecation warnings the deployment reports (each with the new spelling),
and the job's stored manifest is in today's spellings. The client and its fixtures are the
ones of ``test_racetrack_client`` (one cached environment).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from racetrack_core.testing.server import RacetrackServer
from tests.e2e.test_racetrack_client import (  # noqa: F401 (fixtures used by name)
    ADMIN_PASSWORD,
    PRIMER_DIR,
    client_bin,
    client_env,
    in_terminal,
    server,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ORIGINAL_MANIFEST = """\
name: primer
owner_email: sample@example.com
lang: python3:latest
image_type: docker
git:
  remote: https://github.com/TheRacetrack/racetrack
  directory: sample/python-primer
python:
  entrypoint_path: 'entrypoint.py'
  entrypoint_class: 'JobEntrypoint'
"""


def test_the_original_client_deploys_an_original_manifest_with_its_warnings(
    server: RacetrackServer,  # noqa: F811
    client_bin: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    job_dir = tmp_path / "primer"
    shutil.copytree(PRIMER_DIR, job_dir)
    (job_dir / "job.yaml").unlink()
    (job_dir / "fatman.yaml").write_text(ORIGINAL_MANIFEST)
    env = client_env(client_bin, tmp_path / "home")
    racetrack = str(client_bin / "racetrack")
    code, shown = in_terminal([racetrack, "set", "remote", server.remote], env, tmp_path)
    assert code == 0, shown
    code, shown = in_terminal(
        [racetrack, "login", "--username", "admin"],
        env,
        tmp_path,
        answers=[("Enter your password for user admin: ", f"{ADMIN_PASSWORD}\n")],
    )
    assert code == 0, shown

    code, shown = in_terminal([racetrack, "deploy", "--force"], env, job_dir)
    assert code == 0, f"{shown}\n{server.log()}"
    flat = " ".join(shown.split())
    assert "field 'lang': deprecated, write 'jobtype: python3:latest' instead" in flat
    assert (
        "field 'python': deprecated, write its settings (entrypoint_path, entrypoint_class) "
        "under 'jobtype_extra:' instead"
    ) in flat
    assert "field 'image_type': means nothing here" in flat
    assert 'Job "primer" has been deployed.' in flat

    server.login()
    job = server.api("GET", "/job/primer/0.0.1").json()
    assert job["manifest"]["jobtype"] == "python3:latest"
    assert job["manifest"]["jobtype_extra"]["entrypoint_class"] == "JobEntrypoint"
    assert not {"lang", "python", "image_type"} & set(job["manifest"])

    code, shown = in_terminal(
        [racetrack, "call", "primer", "/api/v1/perform", '{"number": 7907}'], env, tmp_path
    )
    assert (code, shown.strip().splitlines()[-1]) == (0, "true"), shown
