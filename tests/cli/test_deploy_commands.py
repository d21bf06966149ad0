"""``racetrack deploy`` against a stand-in Lifecycle: the request, the progress, the outcomes."""

from __future__ import annotations

import base64
import io
import json
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from racetrack_cli import deploy_commands
from racetrack_cli.config import ClientConfig
from racetrack_cli.deploy_commands import read_env_file
from racetrack_cli.progress import PhaseReporter

from .fake_lifecycle import FakeLifecycle, fake_lifecycle

RunCli = Callable[..., Result]
TOKEN = "rt_0123456789abcdefghij"
API = "/lifecycle/api/v1"
PHASES = [
    {"phase": "queued", "time": 100.0},
    {"phase": "fetching source", "time": 100.5},
    {"phase": "building", "time": 101.0},
]


@pytest.fixture
def lifecycle() -> Iterator[FakeLifecycle]:
    with fake_lifecycle() as fake:
        config = ClientConfig.load()
        config.lifecycle_url = fake.url
        config.user_auths[fake.url] = TOKEN
        config.git_credentials["https://github.com/example"] = {"username": "u", "password": "p"}
        config.save()
        fake.answer("POST", f"{API}/deploy", (200, {"id": "d1"}))
        yield fake


def records(*answers: dict[str, Any]) -> Callable[[], tuple[int, Any]]:
    """Answers given one after another, the last one repeated."""
    queue = list(answers)

    def next_answer() -> tuple[int, Any]:
        return 200, queue.pop(0) if len(queue) > 1 else queue[0]

    return next_answer


def pub_url(lifecycle: FakeLifecycle) -> str:
    return lifecycle.url.removesuffix("/lifecycle") + "/pub/job/adder/0.0.1"


def deploy_body(lifecycle: FakeLifecycle) -> dict[str, Any]:
    [seen] = lifecycle.requests_to(f"{API}/deploy")
    body: dict[str, Any] = json.loads(seen.body)
    return body


def test_a_deployment_shows_its_phases_and_how_to_call_the_job(
    run_cli: RunCli, lifecycle: FakeLifecycle, job_dir: Path
) -> None:
    running = {"status": "in_progress", "phase": "building", "phases": PHASES[:2]}
    later = {**running, "phases": PHASES, "warnings": "did you forget to push?"}
    done = {
        **later,
        "status": "done",
        "finish_time": 103,
        "job": {"name": "adder", "pub_url": pub_url(lifecycle)},
    }
    lifecycle.answer("GET", f"{API}/deploy/d1", records(running, later, later, done))
    openapi = {
        "paths": {
            "/api/v1/perform": {
                "post": {"requestBody": {"content": {"application/json": {"example": {"a": 1}}}}}
            }
        }
    }
    lifecycle.answer("GET", "/pub/job/adder/0.0.1/openapi.json", (200, openapi))
    (job_dir / ".gitignore").write_text("*.log\n")
    (job_dir / "debug.log").write_text("not sent")
    (job_dir / "adder.py").write_text("class JobEntrypoint: ...\n")

    result = run_cli("deploy", str(job_dir))

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"job adder 0.0.1 is deployed: {pub_url(lifecycle)}",
        """racetrack call adder /api/v1/perform '{"a": 1}'""",
    ]
    err = result.stderr.splitlines()
    assert err[0] == f"deploying {job_dir} (job adder v0.0.1) to {lifecycle.url}"
    assert err[1].split() == ["queued", "0.5", "s"]
    assert err[2].split() == ["fetching", "source", "0.5", "s"]
    assert err[3] == "Warning: did you forget to push?"
    assert err[4].split() == ["building", "2.0", "s"]
    assert err[5].startswith("done in ")
    assert result.stderr.count("did you forget") == 1

    body = deploy_body(lifecycle)
    assert body["manifest"]["name"] == "adder"
    assert body["force"] is False
    assert body["build_flags"] == []
    assert body["git_credentials"] is None  # the source is sent, git is not asked
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(body["build_context"]))) as archive:
        assert sorted(archive.getnames()) == [".gitignore", "adder.py", "job.yaml"]


def test_a_failed_deployment_shows_the_build_log_and_exits_3(
    run_cli: RunCli, lifecycle: FakeLifecycle, job_dir: Path
) -> None:
    failed = {
        "status": "failed",
        "phases": [*PHASES, {"phase": "failed", "time": 102.0}],
        "error": "the job stopped while starting: it crashed. Last lines:\nTraceback...",
    }
    lifecycle.answer("GET", f"{API}/deploy/d1", (200, failed))
    lifecycle.answer("GET", f"{API}/deploy/d1/build-logs", (200, {"logs": "step 1\nboom\n"}))
    result = run_cli("deploy", str(job_dir), "--force", "--no-cache")
    assert result.exit_code == 3
    err = result.stderr.splitlines()
    assert err[-4:] == [
        "last lines of the build log (deployment d1):",
        "  step 1",
        "  boom",
        "Error: deployment of job adder 0.0.1 failed: the job stopped while starting: "
        "it crashed. Last lines (see the build log above)",
    ]
    assert lifecycle.requests_to(f"{API}/deploy/d1/build-logs")[0].path.endswith("?tail=20")
    body = deploy_body(lifecycle)
    assert body["force"] is True
    assert body["build_flags"] == ["--no-cache"]


def test_ctrl_c_stops_waiting_but_not_the_deployment(
    run_cli: RunCli, lifecycle: FakeLifecycle, job_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise KeyboardInterrupt

    monkeypatch.setattr(deploy_commands, "wait", interrupted)
    result = run_cli("deploy", str(job_dir))
    assert result.exit_code == 130
    assert "stopped waiting; deployment d1 of job adder 0.0.1 goes on" in result.stderr
    assert not lifecycle.requests_to(f"{API}/deploy/d1/cancel")


def test_git_context_sends_credentials_and_secrets(
    run_cli: RunCli, lifecycle: FakeLifecycle, job_dir: Path
) -> None:
    manifest = (job_dir / "job.yaml").read_text()
    manifest += "secret_build_env_file: build.env\nsecret_runtime_env_file: runtime.env\n"
    (job_dir / "job.yaml").write_text(manifest)
    (job_dir / "build.env").write_text("# pip index\nPIP_TOKEN='abc'\n")
    (job_dir / "runtime.env").write_text('export API_KEY="k=v"\n\nOTHER=2\n')
    lifecycle.answer("GET", f"{API}/deploy/d1", (200, {"status": "done", "phases": PHASES}))
    result = run_cli("deploy", str(job_dir), "--build-context", "git", "-e", "version=1.2.3")
    assert result.exit_code == 0, result.stderr
    body = deploy_body(lifecycle)
    assert body["build_context"] is None
    assert body["git_credentials"] == {"username": "u", "password": "p"}
    assert body["secret_vars"] == {
        "build_env": {"PIP_TOKEN": "abc"},
        "runtime_env": {"API_KEY": "k=v", "OTHER": "2"},
    }
    assert body["manifest"]["version"] == "1.2.3"


def test_a_missing_secret_file_is_one_line(
    run_cli: RunCli, lifecycle: FakeLifecycle, job_dir: Path
) -> None:
    (job_dir / "job.yaml").write_text(
        (job_dir / "job.yaml").read_text() + "secret_runtime_env_file: runtime.env\n"
    )
    result = run_cli("deploy", str(job_dir))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot read the secret env file {job_dir}/runtime")
    assert not lifecycle.requests_to(f"{API}/deploy")


def test_an_invalid_manifest_is_not_sent(
    run_cli: RunCli, lifecycle: FakeLifecycle, tmp_path: Path
) -> None:
    (tmp_path / "job.yaml").write_text("name: Bad Name\njobtype: pyton3:latest\n")
    result = run_cli("deploy", str(tmp_path))
    assert result.exit_code == 1
    assert "pyton3" in result.stderr
    assert all(line.startswith("Error: ") for line in result.stderr.splitlines())
    assert not lifecycle.requests_to(f"{API}/deploy")


def test_a_job_type_installed_on_the_server_only_is_left_to_the_server(
    run_cli: RunCli, lifecycle: FakeLifecycle, tmp_path: Path
) -> None:
    """A job type from ``racetrack plugin install`` is on the server, not in the client's
    environment: the manifest goes to the server, which validates it against the job type."""
    (tmp_path / "job.yaml").write_text(
        "name: greeter\nowner_email: a@example.com\njobtype: hello:1.0.0\n"
        "jobtype_extra:\n  greeting: Hello\n"
    )
    lifecycle.answer("GET", f"{API}/deploy/d1", (200, {"status": "done", "phases": PHASES}))
    result = run_cli("deploy", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert "job type 'hello' is not installed here: the server checks the manifest" in (
        result.stderr
    )
    body = deploy_body(lifecycle)
    assert body["manifest"]["jobtype_extra"] == {"greeting": "Hello"}
    assert "job greeter v0.0.1" in result.stderr

    # Anything else wrong is still reported here, and nothing is sent.
    (tmp_path / "job.yaml").write_text("name: Bad Name\nowner_email: a@b.c\njobtype: hello\n")
    result = run_cli("deploy", str(tmp_path))
    assert result.exit_code == 1
    assert "'Bad Name' is not valid" in result.stderr
    assert len(lifecycle.requests_to(f"{API}/deploy")) == 1


def test_deploy_needs_a_login_first(run_cli: RunCli, job_dir: Path) -> None:
    result = run_cli("deploy", str(job_dir))
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: not logged in to http://127.0.0.1:7102/lifecycle: "
        "run racetrack login --username <you>\n"
    )


def test_env_files(tmp_path: Path) -> None:
    (tmp_path / "bad.env").write_text("JUST_A_NAME\n")
    with pytest.raises(Exception, match=r"bad\.env line 1: expected KEY=value"):
        read_env_file(tmp_path, "bad.env")
    assert read_env_file(tmp_path, None) == {}


def test_a_terminal_gets_a_live_line(capsys: pytest.CaptureFixture[str]) -> None:
    reporter = PhaseReporter(live=True)
    reporter.update({"status": "in_progress", "phases": PHASES})
    reporter.tick(0.15)
    reporter.update({"status": "done", "phases": PHASES, "finish_time": 103})
    reporter.finish({"status": "done"})
    err = capsys.readouterr().err
    assert "\r\x1b[K  / building 0.0 s" in err
    assert "building 0.1 s" in err
    finished = "\r\x1b[K  building                        2.0 s\n"
    assert finished in err
    assert err.split(finished)[1].startswith("done in ")  # no redraw after the end


def test_older_spellings_are_sent_as_written_and_each_warning_shown_once(
    run_cli: RunCli, lifecycle: FakeLifecycle, job_dir: Path
) -> None:
    """The server reads older spellings itself and keeps their warnings with the deployment;
    the CLI shows the same sentence once, not again when the deployment reports it."""
    (job_dir / "job.yaml").unlink()
    (job_dir / "fatman.yaml").write_text(
        "name: adder\nowner_email: someone@example.com\nlang: python3:latest\n"
        "git:\n  remote: https://github.com/example/adder\n"
        "python:\n  entrypoint_path: adder.py\n"
    )
    (job_dir / "adder.py").write_text("class JobEntrypoint: ...\n")
    lang = (
        "field 'lang': deprecated, write 'jobtype: python3:latest' instead "
        "(racetrack validate --fix rewrites the file)"
    )
    done = {
        "status": "done",
        "phases": PHASES,
        "finish_time": 103,
        "warnings": lang,
        "job": {"name": "adder", "pub_url": pub_url(lifecycle)},
    }
    lifecycle.answer("GET", f"{API}/deploy/d1", (200, done))
    lifecycle.answer("GET", "/pub/job/adder/0.0.1/openapi.json", (404, {"error": "none"}))

    result = run_cli("deploy", str(job_dir), "--build-context", "local")

    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning: ")]
    assert warnings == [
        "Warning: fatman.yaml is deprecated: rename it to job.yaml",
        "Warning: field 'lang' (line 3): deprecated, write 'jobtype: python3:latest' instead "
        "(racetrack validate --fix rewrites the file)",
        "Warning: field 'python' (line 6): deprecated, write its settings (entrypoint_path) "
        "under 'jobtype_extra:' instead (racetrack validate --fix rewrites the file)",
    ]
    manifest = deploy_body(lifecycle)["manifest"]
    assert manifest["lang"] == "python3:latest"
    assert manifest["python"] == {"entrypoint_path": "adder.py"}
    assert "jobtype" not in manifest
