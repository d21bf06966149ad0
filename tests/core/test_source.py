"""Fetching a job's source: real git over HTTP on 127.0.0.1, and build contexts, hostile ones."""

from __future__ import annotations

import base64
import gzip
import http.server
import io
import socket
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest

from racetrack_core.errors import RacetrackError
from racetrack_core.source import (
    FetchedSource,
    SourceError,
    fetch_git,
    pack_build_context,
    unpack_build_context,
)
from racetrack_core.source.git import _git_env, _secret_forms, scrub
from racetrack_core.testing.gitserver import GitServer, Symlink

JOB = {"job.yaml": "name: hello\n", "entrypoint.py": "class Job: ...\n"}


def fetch(remote: str, dest: Path, log: list[str] | None = None, **kwargs: object) -> FetchedSource:
    """``fetch_git`` with 127.0.0.1, where the test git servers listen, allowed by default."""
    lines = log if log is not None else []
    kwargs.setdefault("allowed_hosts", ["127.0.0.1"])
    return fetch_git(remote, dest=dest, log=lines.append, **kwargs)  # type: ignore[arg-type]


def fetch_error(remote: str, dest: Path, log: list[str] | None = None, **kwargs: object) -> str:
    with pytest.raises(SourceError) as caught:
        fetch(remote, dest, log, **kwargs)
    assert not dest.exists(), "a failed fetch leaves nothing behind"
    return str(caught.value)


def git_output(directory: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(directory), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def every_file_under(directory: Path) -> bytes:
    return b"".join(path.read_bytes() for path in directory.rglob("*") if path.is_file())


# -- git ---------------------------------------------------------------------------------------


def test_public_clone_fetches_only_the_tip_commit(
    racetrack_git_server: GitServer, tmp_path: Path
) -> None:
    url = racetrack_git_server.create_repo("job.git", {**JOB, "job.yaml": "name: old\n"})
    tip = racetrack_git_server.commit("job.git", {"job.yaml": "name: hello\n"})
    log: list[str] = []

    fetched = fetch(url, tmp_path / "src", log)

    assert fetched == FetchedSource(path=(tmp_path / "src").resolve(), commit=tip)
    assert (fetched.path / "job.yaml").read_text() == "name: hello\n"
    assert git_output(fetched.path, "rev-list", "--count", "HEAD") == "1"
    assert git_output(fetched.path, "tag") == ""
    assert any(url in line for line in log)
    assert log[-1] == f"Fetched commit {tip} of {url}"


def test_private_clone_keeps_the_password_out_of_disk_logs_and_command_lines(
    racetrack_private_git_server: GitServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = racetrack_private_git_server
    assert server.username
    assert server.password
    url = server.create_repo("job.git", JOB)
    # A server whose git config stores credentials must not end up with the token on disk,
    # and git's trace of every command it runs must not show it either.
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[credential]\n\thelper = store\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_TRACE", str(tmp_path / "trace.log"))
    log: list[str] = []

    fetched = fetch(url, tmp_path / "src", log, credentials=(server.username, server.password))

    assert (fetched.path / "job.yaml").read_text() == JOB["job.yaml"]
    assert server.requests[-1].auth_sent
    assert server.password.encode() not in every_file_under(tmp_path / "src" / ".git")
    assert not (home / ".git-credentials").exists()
    assert server.password not in (tmp_path / "trace.log").read_text()
    assert server.password not in "\n".join(log)


def test_credentials_written_into_the_url_are_used_and_not_stored(
    racetrack_private_git_server: GitServer, tmp_path: Path
) -> None:
    server = racetrack_private_git_server
    url = server.create_repo("job.git", JOB)
    with_credentials = url.replace("http://", f"http://{server.username}:{server.password}@")
    log: list[str] = []

    fetched = fetch(with_credentials, tmp_path / "src", log)

    assert git_output(fetched.path, "config", "remote.origin.url") == url
    assert server.password
    assert server.password not in "\n".join(log)


def test_refused_credentials_say_how_to_set_them_and_never_echo_them(
    racetrack_private_git_server: GitServer, tmp_path: Path
) -> None:
    url = racetrack_private_git_server.create_repo("job.git", JOB)
    password = "wrong-but-still-secret-7f3a"
    log: list[str] = []

    message = fetch_error(url, tmp_path / "src", log, credentials=("bob", password))

    assert "authentication" in message
    assert f"racetrack set credentials {url} USERNAME TOKEN" in message
    assert password not in message
    assert password not in "\n".join(log)
    assert racetrack_private_git_server.requests[-1].auth_sent


def test_missing_credentials_fail_at_once_instead_of_prompting(
    racetrack_private_git_server: GitServer, tmp_path: Path
) -> None:
    url = racetrack_private_git_server.create_repo("job.git", JOB)
    started = time.monotonic()

    message = fetch_error(url, tmp_path / "src", timeout=60)

    assert time.monotonic() - started < 10
    assert "needs authentication and no credentials were given" in message
    assert "racetrack set credentials" in message


def test_a_branch_is_cloned_by_name(racetrack_git_server: GitServer, tmp_path: Path) -> None:
    url = racetrack_git_server.create_repo("job.git", JOB)
    dev = racetrack_git_server.commit("job.git", {"feature.py": "x = 1\n"}, branch="dev")

    fetched = fetch(url, tmp_path / "src", branch="dev")

    assert fetched.commit == dev
    assert (fetched.path / "feature.py").exists()
    assert git_output(fetched.path, "rev-list", "--count", "HEAD") == "1"
    assert git_output(fetched.path, "branch", "--format=%(refname:short)") == "dev"


def test_an_unknown_branch_is_named(racetrack_git_server: GitServer, tmp_path: Path) -> None:
    url = racetrack_git_server.create_repo("job.git", JOB)

    message = fetch_error(url, tmp_path / "src", branch="nope")

    assert message == (
        f"branch 'nope' was not found in git repository {url}: check manifest field 'git.branch'"
    )


def test_an_unknown_repository_is_named(racetrack_git_server: GitServer, tmp_path: Path) -> None:
    url = racetrack_git_server.repo_url("missing.git")

    message = fetch_error(url, tmp_path / "src")

    assert message.startswith(f"git repository {url} was not found: check manifest field")


def test_git_directory_selects_the_job_inside_the_repository(
    racetrack_git_server: GitServer, tmp_path: Path
) -> None:
    url = racetrack_git_server.create_repo(
        "mono.git", {f"jobs/hello/{name}": text for name, text in JOB.items()}
    )

    fetched = fetch(url, tmp_path / "src", directory="jobs/./hello/")

    assert fetched.path == (tmp_path / "src" / "jobs" / "hello").resolve()
    assert (fetched.path / "job.yaml").is_file()


@pytest.mark.parametrize(
    ("directory", "problem"),
    [("jobs/missing", "does not exist in"), ("job.yaml", "is a file in")],
)
def test_git_directory_must_exist_in_the_commit(
    racetrack_git_server: GitServer, tmp_path: Path, directory: str, problem: str
) -> None:
    url = racetrack_git_server.create_repo("job.git", JOB)

    message = fetch_error(url, tmp_path / "src", directory=directory)

    assert message.startswith(f"manifest field 'git.directory': {directory!r} {problem} {url}")


@pytest.mark.parametrize(
    ("directory", "problem"),
    [
        ("../outside", "points outside the repository"),
        ("jobs/../../outside", "points outside the repository"),
        ("/etc", "not absolute"),
        (".git", "git's own .git directory"),
    ],
)
def test_git_directory_outside_the_repository_is_refused_before_cloning(
    racetrack_git_server: GitServer, tmp_path: Path, directory: str, problem: str
) -> None:
    url = racetrack_git_server.create_repo("job.git", JOB)

    message = fetch_error(url, tmp_path / "src", directory=directory)

    assert problem in message
    assert racetrack_git_server.requests == []


@pytest.mark.parametrize("target", ["../../..", "/etc", ".git"])
def test_git_directory_may_not_escape_through_a_symlink(
    racetrack_git_server: GitServer, tmp_path: Path, target: str
) -> None:
    url = racetrack_git_server.create_repo("job.git", {**JOB, "escape": Symlink(target)})

    message = fetch_error(url, tmp_path / "src", directory="escape")

    assert "manifest field 'git.directory': 'escape' leads" in message


def test_a_symlink_inside_the_repository_is_followed(
    racetrack_git_server: GitServer, tmp_path: Path
) -> None:
    files = {f"jobs/hello/{name}": text for name, text in JOB.items()}
    url = racetrack_git_server.create_repo("job.git", {**files, "current": Symlink("jobs/hello")})

    fetched = fetch(url, tmp_path / "src", directory="current")

    assert fetched.path == (tmp_path / "src" / "jobs" / "hello").resolve()


def test_scrubbing_removes_every_spelling_of_the_password() -> None:
    password = "p@ss/word"
    said = (
        "fatal: unable to access 'https://bob:p%40ss%2Fword@example.com/x.git/': "
        "Authorization: Basic Ym9iOnBAc3Mvd29yZA== p@ss/word"
    )

    scrubbed = scrub(said, _secret_forms(("bob", password)))

    assert scrubbed == (
        "fatal: unable to access 'https://***@example.com/x.git/': Authorization: Basic *** ***"
    )


def test_a_remote_that_never_answers_times_out(tmp_path: Path) -> None:
    # Listening but never accepting: the connection opens and no answer ever comes.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/job.git"
        started = time.monotonic()

        message = fetch_error(url, tmp_path / "src", timeout=1)

    assert time.monotonic() - started < 10
    assert message.startswith(f"cloning {url} timed out after 1 s")


@pytest.mark.parametrize("remote", ["file:///etc", "/srv/git/job.git", "ext::sh -c id", "-u"])
def test_only_network_transports_are_allowed(tmp_path: Path, remote: str) -> None:
    message = fetch_error(remote, tmp_path / "src")

    assert "is not a supported git URL" in message


# -- git remotes on loopback and private hosts --------------------------------------------------


def test_a_loopback_remote_is_refused_unless_allowed(
    racetrack_git_server: GitServer, tmp_path: Path
) -> None:
    url = racetrack_git_server.create_repo("job.git", JOB)
    racetrack_git_server.clear_requests()

    message = fetch_error(url, tmp_path / "src", allowed_hosts=[])

    host = racetrack_git_server.allowed_host
    assert message == (
        f"manifest field 'git.remote': '{url}' is on a loopback or private address "
        "(127.0.0.1), which the server does not fetch from unless allowed: add "
        f"'{host}' to the setting source_allowed_hosts (RACETRACK_SOURCE_ALLOWED_HOSTS)"
    )
    assert racetrack_git_server.requests == []  # refused before connecting
    assert fetch(url, tmp_path / "by-port", allowed_hosts=[host]).commit
    assert fetch_error(url, tmp_path / "other-port", allowed_hosts=["127.0.0.1:1"])


@pytest.mark.parametrize(
    "remote",
    [
        "http://localhost:{port}/job.git",
        "http://[::1]:{port}/job.git",
        "http://[::ffff:127.0.0.1]:{port}/job.git",
        "http://2130706433:{port}/job.git",
        "http://127.1:{port}/job.git",
        "http://0.0.0.0:{port}/job.git",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.8/job.git",
        "https://100.100.100.200/job.git",
        "https://[fd00:ec2::254]/job.git",
        "https://[64:ff9b::a9fe:a9fe]/job.git",
        "ssh://git@127.0.0.1:{port}/job.git",
        "git://127.0.0.1:{port}/job.git",
        "git@localhost:owner/job.git",
        "http://user:pw-7f3a@127.0.0.1:{port}/job.git",
    ],
)
def test_every_spelling_of_an_internal_host_gets_the_same_refusal(
    tmp_path: Path, remote: str
) -> None:
    # Listening or not, every port gets the same sentence: the answer tells nothing about it.
    with socket.create_server(("127.0.0.1", 0)) as listening:
        for port in (listening.getsockname()[1], 1):
            message = fetch_error(remote.format(port=port), tmp_path / "src", allowed_hosts=[])
            assert "is on a loopback or private address" in message
            assert "source_allowed_hosts" in message
            assert "pw-7f3a" not in message


def test_a_redirect_is_not_followed(racetrack_git_server: GitServer, tmp_path: Path) -> None:
    racetrack_git_server.create_repo("job.git", JOB)
    target = racetrack_git_server.repo_url("job.git")

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(301)
            self.send_header("Location", target + self.path.removeprefix("/moved.git"))
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect) as redirector:
        threading.Thread(target=redirector.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{redirector.server_address[1]}/moved.git"
        try:
            message = fetch_error(url, tmp_path / "src")
        finally:
            redirector.shutdown()

    assert "answered with a redirect, which Racetrack does not follow" in message
    assert "set manifest field 'git.remote' to the URL it redirects to" in message


def test_an_http_clone_connects_only_to_the_addresses_checked() -> None:
    env = _git_env("https://git.example.com/job.git", None, ["93.184.216.34", "2606:2800::1"])
    config = {
        env[f"GIT_CONFIG_KEY_{index}"]: env[f"GIT_CONFIG_VALUE_{index}"]
        for index in range(int(env["GIT_CONFIG_COUNT"]))
    }
    assert config["http.curloptResolve"] == "git.example.com:443:93.184.216.34,[2606:2800::1]"
    assert config["http.followRedirects"] == "false"
    plain = _git_env("http://93.184.216.34:8080/job.git", None, ["93.184.216.34"])
    assert "http.curloptResolve" not in plain.values()


def test_a_non_empty_destination_is_a_caller_error(
    racetrack_git_server: GitServer, tmp_path: Path
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "keep.txt").write_text("mine")

    with pytest.raises(ValueError, match="is not empty"):
        fetch(racetrack_git_server.repo_url("job.git"), tmp_path / "src")
    assert (tmp_path / "src" / "keep.txt").read_text() == "mine"


def test_source_error_is_a_racetrack_error() -> None:
    assert issubclass(SourceError, RacetrackError)


# -- build contexts ----------------------------------------------------------------------------


def make_job_directory(root: Path) -> Path:
    root.mkdir()
    (root / "job.yaml").write_text("name: hello\n")
    (root / "src").mkdir()
    (root / "src" / "main.py").write_text("print('hi')\n")
    (root / "src" / "main.pyc").write_bytes(b"compiled")
    (root / "build").mkdir()
    (root / "build" / "out.bin").write_bytes(b"out")
    (root / "main.py").symlink_to("src/main.py")
    (root / ".gitignore").write_text("*.pyc\nbuild/\n")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    return root


def listing(root: Path) -> list[str]:
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*"))


def test_a_folder_round_trips_without_git_dir_and_ignored_files(tmp_path: Path) -> None:
    job = make_job_directory(tmp_path / "job")

    unpacked = unpack_build_context(pack_build_context(job), tmp_path / "out" / "context")

    assert unpacked == tmp_path / "out" / "context"
    assert listing(unpacked) == [".gitignore", "job.yaml", "main.py", "src", "src/main.py"]
    assert (unpacked / "main.py").readlink() == Path("src/main.py")
    assert (unpacked / "main.py").read_text() == "print('hi')\n"


def test_packing_asks_git_inside_a_work_tree(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "--quiet", str(repo)], check=True)
    (repo / ".gitignore").write_text("secrets.env\n")
    job = make_job_directory(repo / "job")
    (job / "secrets.env").write_text("TOKEN=1")
    (job / ".git").rename(job / "not-git")  # a nested .git would make it a repository of its own

    unpacked = unpack_build_context(pack_build_context(job), tmp_path / "context")

    assert listing(unpacked) == [
        ".gitignore",
        "job.yaml",
        "main.py",
        "not-git",
        "not-git/config",
        "src",
        "src/main.py",
    ]


def test_packing_everything_but_git_when_asked(tmp_path: Path) -> None:
    job = make_job_directory(tmp_path / "job")

    context = pack_build_context(job, respect_gitignore=False)

    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(context))) as archive:
        names = archive.getnames()
    assert sorted(names) == [
        ".gitignore",
        "build/out.bin",
        "job.yaml",
        "main.py",
        "src/main.py",
        "src/main.pyc",
    ]


def build_context(*members: tuple[tarfile.TarInfo, bytes | None]) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        for info, content in members:
            if content is not None:
                info.size = len(content)
            archive.addfile(info, io.BytesIO(content) if content is not None else None)
    return base64.b64encode(buffer.getvalue()).decode()


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


def test_old_client_archives_with_directories_and_read_only_modes_unpack(tmp_path: Path) -> None:
    readonly = member("src", tarfile.DIRTYPE)
    readonly.mode = 0o555
    context = build_context(
        (member(".", tarfile.DIRTYPE), None),
        (readonly, None),
        (member("src/main.py"), b"print(1)\n"),
        (member("main.py", tarfile.SYMTYPE, "src/main.py"), None),
        (member("copy.py", tarfile.LNKTYPE, "src/main.py"), None),
    )
    wrapped = "\n".join(context[i : i + 76] for i in range(0, len(context), 76))

    unpacked = unpack_build_context(wrapped, tmp_path / "context")

    assert (unpacked / "copy.py").read_text() == "print(1)\n"
    assert (unpacked / "main.py").read_text() == "print(1)\n"


UNSAFE = {
    "absolute path": ((member("/etc/cron.d/x"), b"x"),),
    "dot-dot": ((member("../x"), b"x"),),
    "nested dot-dot": ((member("a/../../x"), b"x"),),
    "symlink absolute": ((member("link", tarfile.SYMTYPE, "/etc/passwd"), None),),
    "symlink out": ((member("a/link", tarfile.SYMTYPE, "../../x"), None),),
    "symlink chain out": (
        (member("a", tarfile.SYMTYPE, "."), None),
        (member("a/b", tarfile.SYMTYPE, ".."), None),
    ),
    # Lexically "x", really the parent of the job directory: "a" is the directory itself.
    "hardlink through symlink": (
        (member("a", tarfile.SYMTYPE, "."), None),
        (member("hard", tarfile.LNKTYPE, "a/../x"), None),
    ),
    "hardlink out": ((member("hard", tarfile.LNKTYPE, "../x"), None),),
    "hardlink absolute": ((member("hard", tarfile.LNKTYPE, "/etc/passwd"), None),),
    "character device": ((member("null", tarfile.CHRTYPE), None),),
    "block device": ((member("disk", tarfile.BLKTYPE), None),),
    "fifo": ((member("pipe", tarfile.FIFOTYPE), None),),
}
REASONS = {
    "absolute path": "has an absolute path",
    "dot-dot": "contains '..'",
    "nested dot-dot": "contains '..'",
    "symlink absolute": "is a symbolic link to '/etc/passwd', outside the job directory",
    "symlink out": "is a symbolic link to '../../x', outside the job directory",
    "symlink chain out": "member 'a/b' is a symbolic link to '..', outside the job directory",
    "hardlink through symlink": "member 'hard' is a hard link to 'a/../x', outside",
    "hardlink out": "is a hard link to '../x', outside the job directory",
    "hardlink absolute": "is a hard link to '/etc/passwd', outside the job directory",
    "character device": "is a character device",
    "block device": "is a block device",
    "fifo": "is a fifo",
}


def unpack_error(context: str, dest: Path, **limits: int) -> str:
    dest.parent.mkdir()
    with pytest.raises(SourceError) as caught:
        unpack_build_context(context, dest, **limits)
    assert not dest.exists(), "a refused build context leaves nothing behind"
    assert list(dest.parent.iterdir()) == [], "nor any scratch directory"
    return str(caught.value)


@pytest.mark.parametrize("case", UNSAFE)
def test_unsafe_members_are_refused(tmp_path: Path, case: str) -> None:
    safe = (member("job.yaml"), b"name: hello\n")

    message = unpack_error(build_context(safe, *UNSAFE[case]), tmp_path / "out" / "context")

    assert REASONS[case] in message


def test_too_many_members_are_refused_while_counting(tmp_path: Path) -> None:
    context = build_context(*((member(f"f{index}"), b"") for index in range(11)))

    message = unpack_error(context, tmp_path / "out" / "context", max_members=10)

    assert message == "build context has more than 10 files and directories"


def test_too_many_uncompressed_bytes_are_refused(tmp_path: Path) -> None:
    context = build_context((member("zeros.bin"), bytes(2 * 1024 * 1024)))

    message = unpack_error(context, tmp_path / "out" / "context", max_unpacked_bytes=1024 * 1024)

    assert message == "build context unpacks to more than 1 MiB"


def test_a_header_bomb_is_stopped_while_decompressing(tmp_path: Path) -> None:
    info = member("job.yaml")
    info.pax_headers = {"comment": "x" * 4 * 1024 * 1024}  # read into memory by tarfile
    context = build_context((info, b""))

    message = unpack_error(
        context, tmp_path / "out" / "context", max_unpacked_bytes=1024 * 1024, max_members=10
    )

    assert message == "build context unpacks to more than 1 MiB"


def test_a_large_compressed_context_is_refused_before_decoding(tmp_path: Path) -> None:
    context = base64.b64encode(bytes(range(256)) * 64).decode()

    message = unpack_error(context, tmp_path / "out" / "context", max_bytes=1000)

    assert message.startswith(
        "the build context is 16.0 KiB compressed, more than the limit of 1000 bytes"
    )


@pytest.mark.parametrize(
    ("context", "reason"),
    [
        ("not base64!", "build context is not valid base64"),
        (base64.b64encode(b"plain text").decode(), "is not a gzip-compressed tar archive"),
        (base64.b64encode(gzip.compress(b"not a tar" * 100)).decode(), "not a valid tar archive"),
        (base64.b64encode(gzip.compress(b"x" * 10_000)[:40]).decode(), "not a valid gzip file"),
    ],
)
def test_malformed_contexts_are_refused(tmp_path: Path, context: str, reason: str) -> None:
    message = unpack_error(context, tmp_path / "out" / "context")

    assert reason in message
