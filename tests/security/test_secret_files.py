"""D1: the files that a manifest names as secret env files never stay in a job's source.

The original ``racetrack-client`` uploads them inside the build context, so the server must
remove them itself; Racetrack's own CLI leaves them out of the context it packs.
"""

from __future__ import annotations

import base64
import gzip
import io
import secrets
import tarfile
import textwrap
from pathlib import Path

import pytest

from racetrack_cli.deploy_commands import pack
from racetrack_core.manifest import load_manifest
from racetrack_core.source import remove_secret_files
from racetrack_core.testing.gitserver import GitServer
from racetrack_core.testing.server import RacetrackServer

READER = '''
from pathlib import Path


class JobEntrypoint:
    def perform(self, name: str) -> str | None:
        """The content of a file of this job's source, or None when it is not there."""
        path = Path(__file__).parent / name
        return path.read_text() if path.exists() else None

    def docs_input_example(self) -> dict:
        return {"name": "build.env"}
'''


def make_job(folder: Path, build_secret: str, runtime_secret: str) -> Path:
    (folder / "conf").mkdir(parents=True)
    (folder / "job.yaml").write_text(
        textwrap.dedent(
            """\
            name: secret-reader
            version: 0.0.1
            owner_email: owner@example.com
            jobtype: python3:latest
            secret_build_env_file: build.env
            secret_runtime_env_file: conf/runtime.env
            jobtype_extra:
              entrypoint_path: entrypoint.py
              entrypoint_class: JobEntrypoint
            """
        )
    )
    (folder / "entrypoint.py").write_text(READER)
    (folder / "build.env").write_text(f"BUILD_TOKEN={build_secret}\n")
    (folder / "conf" / "runtime.env").write_text(f"API_KEY={runtime_secret}\n")
    return folder


def members(context: str) -> set[str]:
    data = gzip.decompress(base64.b64decode(context))
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return set(archive.getnames())


def test_the_cli_leaves_secret_files_out_of_the_build_context(tmp_path: Path) -> None:
    job = make_job(tmp_path / "job", "b-" + secrets.token_hex(8), "r-" + secrets.token_hex(8))
    manifest = {"secret_build_env_file": "build.env", "secret_runtime_env_file": "conf/runtime.env"}
    names = members(pack(job, manifest))
    assert "entrypoint.py" in names
    assert "build.env" not in names
    assert "conf/runtime.env" not in names


def test_removal_stays_inside_the_job_directory(tmp_path: Path) -> None:
    outside = tmp_path / "outside.env"
    outside.write_text("KEEP=1\n")
    workspace = tmp_path / "workspace"
    (workspace / "conf").mkdir(parents=True)
    (workspace / "link").symlink_to(tmp_path)  # a link leading out of the job directory
    (workspace / "conf" / "real.env").write_text("A=1\n")
    (workspace / "build.env").symlink_to("conf/real.env")
    removed = remove_secret_files(
        workspace,
        {"secret_build_env_file": "build.env", "secret_runtime_env_file": "link/outside.env"},
    )
    assert removed == ["build.env"]
    assert not (workspace / "build.env").is_symlink()
    assert not (workspace / "conf" / "real.env").exists()  # what the link pointed at goes too
    assert outside.read_text() == "KEEP=1\n"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_deployed_job_keeps_no_secret_file(
    racetrack_server: RacetrackServer, tmp_path: Path
) -> None:
    build_secret = "b-" + secrets.token_hex(12)
    runtime_secret = "r-" + secrets.token_hex(12)
    job = make_job(tmp_path / "job", build_secret, runtime_secret)
    racetrack_server.login()
    # As the original client does: the files are in the context, their values in secret_vars.
    record = racetrack_server.deploy_folder(
        job,
        secret_vars={
            "build_env": {"BUILD_TOKEN": build_secret},
            "runtime_env": {"API_KEY": runtime_secret},
        },
    )
    assert record["status"] == "done", f"{record}\n{racetrack_server.log()}"

    home = racetrack_server.home
    kept = [path for path in (home / "jobs").rglob("*") if path.name.endswith(".env")]
    assert kept == []
    for path in home.rglob("*"):
        if path.is_file() and not path.is_symlink():
            content = path.read_bytes()
            assert build_secret.encode() not in content, f"build secret in {path}"
            assert runtime_secret.encode() not in content, f"runtime secret in {path}"

    for name in ("build.env", "conf/runtime.env"):
        answer = racetrack_server.call("secret-reader", "0.0.1", {"name": name})
        assert answer.status_code == 200, answer.text
        assert answer.json() is None, f"the job could read {name}"
    assert racetrack_server.call("secret-reader", "0.0.1", {"name": "job.yaml"}).json()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_job_from_git_keeps_no_secret_file(
    racetrack_server: RacetrackServer, racetrack_git_server: GitServer, tmp_path: Path
) -> None:
    build_secret = "b-" + secrets.token_hex(12)
    runtime_secret = "r-" + secrets.token_hex(12)
    job = make_job(tmp_path / "job", build_secret, runtime_secret)
    files = {
        f"jobs/reader/{path.relative_to(job).as_posix()}": path.read_text()
        for path in job.rglob("*")
        if path.is_file()
    }
    remote = racetrack_git_server.create_repo("reader.git", files)
    manifest = load_manifest(job / "job.yaml").data
    manifest["git"] = {"remote": remote, "directory": "jobs/reader"}
    racetrack_server.login()
    record = racetrack_server.deploy(
        {
            "manifest": manifest,
            "secret_vars": {
                "build_env": {"BUILD_TOKEN": build_secret},
                "runtime_env": {"API_KEY": runtime_secret},
            },
        }
    )
    assert record["status"] == "done", f"{record}\n{racetrack_server.log()}"
    kept = [p for p in (racetrack_server.home / "jobs").rglob("*") if p.name.endswith(".env")]
    assert kept == []
    for name in ("build.env", "conf/runtime.env"):
        answer = racetrack_server.call("secret-reader", "0.0.1", {"name": name})
        assert answer.json() is None, f"the job could read {name}"
