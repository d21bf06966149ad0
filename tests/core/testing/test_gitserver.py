"""The test git server: real ``git clone`` over smart HTTP on 127.0.0.1, with and without auth."""

from __future__ import annotations

import base64
import http.client
import socket
import subprocess
from pathlib import Path

import pytest

from racetrack_core.testing.gitserver import GitServer, Symlink


def clone(url: str, dest: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "clone", "--quiet", *args, url, str(dest)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", "GIT_TERMINAL_PROMPT": "0", "HOME": "/"},
        check=False,
        timeout=30,
    )


def get(server: GitServer, path: str, authorization: str | None = None) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    headers = {"Authorization": authorization} if authorization else {}
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def test_a_created_repository_clones_with_its_files_and_symlinks(
    racetrack_git_server: GitServer, tmp_path: Path
) -> None:
    url = racetrack_git_server.create_repo(
        "job.git",
        {"job.yaml": "name: hello\n", "src/data.bin": b"\x00\x01", "link": Symlink("job.yaml")},
    )
    assert url == f"{racetrack_git_server.url}/job.git"

    result = clone(url, tmp_path / "clone")

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "clone" / "job.yaml").read_text() == "name: hello\n"
    assert (tmp_path / "clone" / "src" / "data.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "clone" / "link").readlink() == Path("job.yaml")
    assert {request.auth_sent for request in racetrack_git_server.requests} == {False}


def test_commits_add_to_a_branch_or_start_one_from_the_default_branch(
    racetrack_git_server: GitServer, tmp_path: Path
) -> None:
    url = racetrack_git_server.create_repo("job.git", {"a.txt": "a", "b.txt": "b"})
    first = racetrack_git_server.rev_parse("job.git")
    second = racetrack_git_server.commit("job.git", {"b.txt": None, "c.txt": "c"}, branch="dev")

    assert racetrack_git_server.rev_parse("job.git", "dev") == second
    assert racetrack_git_server.rev_parse("job.git", "main") == first
    assert racetrack_git_server.rev_parse("job.git", "nope") is None
    result = clone(url, tmp_path / "dev", "--branch", "dev")
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in (tmp_path / "dev").iterdir()) == [".git", "a.txt", "c.txt"]


def test_a_private_server_answers_401_with_a_basic_challenge(tmp_path: Path) -> None:
    with GitServer(tmp_path / "root", username="bob", password="s3cret-pw") as server:
        server.create_repo("job.git", {"a.txt": "a"})
        path = "/job.git/info/refs?service=git-upload-pack"

        missing = get(server, path)
        wrong = get(server, path, basic("bob", "wrong"))
        right = get(server, path, basic("bob", "s3cret-pw"))

        assert missing.status == 401
        assert missing.getheader("WWW-Authenticate", "").startswith("Basic realm=")
        assert wrong.status == 401
        assert right.status == 200
        assert right.getheader("Content-Type") == "application/x-git-upload-pack-advertisement"
        assert [request.auth_sent for request in server.requests] == [False, True, True]
        assert "s3cret-pw" not in repr(server.requests)


def test_private_git_server_fixture_clones_only_with_its_credentials(
    racetrack_private_git_server: GitServer, tmp_path: Path
) -> None:
    server = racetrack_private_git_server
    url = server.create_repo("job.git", {"a.txt": "a"})
    assert server.username
    assert server.password
    with_credentials = url.replace("http://", f"http://{server.username}:{server.password}@")

    refused = clone(url, tmp_path / "refused")
    accepted = clone(with_credentials, tmp_path / "accepted")

    assert refused.returncode != 0
    assert "could not read Username" in refused.stderr
    assert accepted.returncode == 0, accepted.stderr
    assert server.requests[-1].auth_sent


def test_stopping_closes_the_port(tmp_path: Path) -> None:
    with GitServer(tmp_path) as server:
        port = server.port
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 2):
        pass
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url


@pytest.mark.parametrize("name", ["../escape.git", "/abs.git", "a/../../b.git", ""])
def test_repository_names_stay_under_the_root(racetrack_git_server: GitServer, name: str) -> None:
    with pytest.raises(ValueError, match="not a simple relative path"):
        racetrack_git_server.create_repo(name, {"a": "a"})


def test_half_given_credentials_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="both username and password"):
        GitServer(tmp_path, username="bob")
