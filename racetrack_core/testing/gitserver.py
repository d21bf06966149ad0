"""A real git smart-HTTP server for tests, built on git's own ``git http-backend``.

Tests of anything that clones (the source phase of a deployment, a job type that fetches its
own code) need a git remote that speaks the real protocol, with and without authentication,
without leaving 127.0.0.1. :class:`GitServer` is a small threaded :mod:`http.server` that hands
every request to ``git http-backend`` as a CGI script, optionally behind HTTP Basic auth::

    with GitServer(tmp_path, username="bob", password="s3cret") as server:
        url = server.create_repo("job.git", {"job.yaml": "name: hello\\n"})
        sha = server.commit("job.git", {"README.md": "new"}, branch="dev")
        assert server.requests[-1].auth_sent

The pytest plugin :mod:`racetrack_core.testing.plugin` offers it as two fixtures,
``racetrack_git_server`` (public) and ``racetrack_private_git_server`` (HTTP Basic auth with a
random password); the HTTP side is in :mod:`racetrack_core.testing.githttp`.

The request log (:attr:`GitServer.requests`) records paths and whether credentials were sent,
never the credentials themselves.

A Racetrack server refuses git remotes on loopback addresses unless its setting
``source_allowed_hosts`` names them: start a server that deploys from a ``GitServer`` with
:data:`ALLOW_LOOPBACK_SOURCES` in its environment (``racetrack_server`` does), and give
``fetch_git`` the server's :attr:`GitServer.allowed_host`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from racetrack_core.testing.githttp import GitHTTPServer, GitRequest

AUTHOR = {
    "GIT_AUTHOR_NAME": "Racetrack Tests",
    "GIT_AUTHOR_EMAIL": "tests@racetrack.invalid",
    "GIT_COMMITTER_NAME": "Racetrack Tests",
    "GIT_COMMITTER_EMAIL": "tests@racetrack.invalid",
}
_REPO_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*")


ALLOW_LOOPBACK_SOURCES: Mapping[str, str] = {"RACETRACK_SOURCE_ALLOWED_HOSTS": "127.0.0.1"}
"""Server settings that let it fetch sources from 127.0.0.1, where every GitServer listens."""


@dataclass(frozen=True)
class Symlink:
    """File content for :meth:`GitServer.commit`: a symbolic link to ``target``."""

    target: str


FileContent = str | bytes | Symlink | None
"""A file's new content in a commit: text, bytes, a symlink, or None to delete the file."""


class GitServer:
    """A git smart-HTTP server on 127.0.0.1 serving the bare repositories under ``root``.

    Use it as a context manager (or call :meth:`start` and :meth:`stop`). With ``username`` and
    ``password`` every request needs matching HTTP Basic credentials; a request without them,
    or with others, gets 401 and ``WWW-Authenticate: Basic``.
    """

    def __init__(
        self, root: Path, username: str | None = None, password: str | None = None
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        self.root = Path(root)
        self.username = username
        self.password = password
        self._requests: list[GitRequest] = []
        self._lock = threading.Lock()
        self._httpd: GitHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- running ---------------------------------------------------------------------------

    def start(self) -> GitServer:
        """Listen on a free port of 127.0.0.1 and serve requests in a background thread."""
        if self._httpd is not None:
            raise RuntimeError("the git server is already running")
        if shutil.which("git") is None:
            raise RuntimeError("the git server needs the `git` command on PATH")
        self.root.mkdir(parents=True, exist_ok=True)
        self._httpd = GitHTTPServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},  # how long stop() waits for the loop to notice
            name=f"git-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wait for requests in flight and close the listening socket."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd = None
        self._thread = None

    def __enter__(self) -> GitServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the git server is not running: use it as a context manager")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The server's base URL, ``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def allowed_host(self) -> str:
        """``127.0.0.1:PORT``: the entry of ``source_allowed_hosts`` that allows this server."""
        return f"127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[GitRequest]:
        """A copy of the request log, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- repositories ----------------------------------------------------------------------

    def repo_url(self, name: str) -> str:
        """The clone URL of repository ``name`` (whether or not it exists)."""
        _check_repo_name(name)
        return f"{self.url}/{name}"

    def repo_path(self, name: str) -> Path:
        """The bare repository's directory on disk."""
        _check_repo_name(name)
        return self.root / name

    def create_repo(
        self,
        name: str,
        files: Mapping[str, FileContent],
        branch: str = "main",
        *,
        message: str = "Initial commit",
    ) -> str:
        """Create bare repository ``name`` with one commit of ``files`` on ``branch``.

        ``branch`` becomes the default branch (what a clone without ``--branch`` checks out).
        Returns the clone URL.
        """
        path = self.repo_path(name)
        if path.exists():
            raise FileExistsError(f"repository {name!r} already exists at {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        _git("init", "--quiet", "--bare", f"--initial-branch={branch}", str(path))
        self.commit(name, files, branch=branch, message=message)
        return self.repo_url(name)

    def commit(
        self,
        name: str,
        files: Mapping[str, FileContent],
        *,
        branch: str = "main",
        base: str | None = None,
        message: str = "Update",
    ) -> str:
        """Add a commit to ``branch`` that writes ``files`` (None deletes one); return its sha.

        A branch that does not exist yet starts from ``base`` (a branch or commit), by default
        from the repository's default branch. Files not named keep their content.
        """
        git_dir = str(self.repo_path(name))
        parent = self.rev_parse(name, f"refs/heads/{branch}")
        if parent is None:
            parent = self.rev_parse(name, base or "HEAD")
            if base is not None and parent is None:
                raise ValueError(f"base {base!r} does not exist in repository {name!r}")
        with tempfile.TemporaryDirectory(prefix="racetrack-git-index-") as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            _git("--git-dir", git_dir, "read-tree", parent or "--empty", env=env)
            entries = []
            for path, content in files.items():
                if "\n" in path or "\t" in path:
                    raise ValueError(f"file name {path!r} has a tab or a newline")
                if content is None:  # mode 0 removes the path from the index
                    entries.append(f"0 {'0' * 40}\t{path}\n")
                    continue
                if isinstance(content, Symlink):
                    mode, data = "120000", content.target.encode()
                else:
                    mode, data = "100644", content.encode() if isinstance(content, str) else content
                blob = _git("--git-dir", git_dir, "hash-object", "-w", "--stdin", input=data)
                entries.append(f"{mode} {blob}\t{path}\n")
            index_info = "".join(entries).encode()
            _git("--git-dir", git_dir, "update-index", "--index-info", env=env, input=index_info)
            tree = _git("--git-dir", git_dir, "write-tree", env=env)
        parents = ["-p", parent] if parent else []
        sha = _git("--git-dir", git_dir, "commit-tree", tree, *parents, "-m", message)
        _git("--git-dir", git_dir, "update-ref", f"refs/heads/{branch}", sha)
        return sha

    def rev_parse(self, name: str, revision: str = "HEAD") -> str | None:
        """The commit sha that ``revision`` names in repository ``name``, or None."""
        commit = f"{revision}^{{commit}}"
        result = subprocess.run(
            ["git", "--git-dir", str(self.repo_path(name)), "rev-parse", "--verify", "-q", commit],
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout.strip() if result.returncode == 0 else None

    # -- serving ---------------------------------------------------------------------------

    def check_authorization(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header (or its absence) may reach the repositories."""
        if self.username is None or self.password is None:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(header[len("Basic ") :], validate=True)
        except (binascii.Error, ValueError):
            return False
        expected = f"{self.username}:{self.password}".encode()
        return hmac.compare_digest(decoded, expected)

    def record(self, request: GitRequest) -> None:
        """Add one answered request to the log."""
        with self._lock:
            self._requests.append(request)


def _check_repo_name(name: str) -> None:
    if not _REPO_NAME.fullmatch(name) or ".." in name.split("/"):
        raise ValueError(f"repository name {name!r} is not a simple relative path")


def _git(*args: str, env: Mapping[str, str] | None = None, input: bytes | None = None) -> str:
    result = subprocess.run(
        ["git", *args],
        input=input,
        capture_output=True,
        env={**os.environ, **AUTHOR, **(env or {})},
        check=False,
    )
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace").strip()
        raise RuntimeError(f"git {' '.join(args)} failed: {stderr}")
    return result.stdout.decode().strip()
