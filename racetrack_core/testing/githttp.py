"""The HTTP side of the test git server: each request goes to ``git http-backend`` as CGI.

:class:`GitHTTPServer` answers for a :class:`GitHost` (in practice
:class:`~racetrack_core.testing.gitserver.GitServer`), which says where the repositories are,
checks credentials and keeps the request log.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

REALM = "racetrack-test-git"
_BACKEND_TIMEOUT = 60.0


@dataclass(frozen=True)
class GitRequest:
    """One request the server answered: never the credentials, only whether some were sent."""

    method: str
    path: str
    query: str
    auth_sent: bool
    status: int


class GitHost(Protocol):
    """What the HTTP server needs from the git server it answers for."""

    @property
    def root(self) -> Path: ...

    @property
    def username(self) -> str | None: ...

    def check_authorization(self, header: str | None) -> bool: ...

    def record(self, request: GitRequest) -> None: ...


class GitHTTPServer(ThreadingHTTPServer):
    # Request threads are joined on server_close, so a test never ends with one still running.
    daemon_threads = False

    def __init__(self, git: GitHost) -> None:
        self.git = git
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server_version = "racetrack-test-git/1"

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the request log of :class:`GitServer` replaces the access log on stderr."""

    def _serve(self) -> None:
        server = self.server
        assert isinstance(server, GitHTTPServer)
        git = server.git
        split = urlsplit(self.path)
        authorization = self.headers.get("Authorization")
        body = self._read_body()
        if git.check_authorization(authorization):
            status, headers, content = self._run_backend(git, split.path, split.query, body)
        else:
            status, content = 401, b"authentication required\n"
            headers = [
                ("WWW-Authenticate", f'Basic realm="{REALM}"'),
                ("Content-Type", "text/plain"),
            ]
        # Logged before answering, so that a client that has its answer finds it in the log.
        git.record(
            GitRequest(
                method=self.command,
                path=split.path,
                query=split.query,
                auth_sent=authorization is not None,
                status=status,
            )
        )
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        if not any(key.lower() == "content-length" for key, _ in headers):
            self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers, then the blank line
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _run_backend(
        self, git: GitHost, path: str, query: str, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Run ``git http-backend`` as a CGI script: its status, headers and body."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", str(git.root)),
            "GIT_PROJECT_ROOT": str(git.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": self.request_version,
            "REQUEST_METHOD": self.command,
            "PATH_INFO": unquote(path),
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
        }
        if git.username is not None:
            env["REMOTE_USER"] = git.username
        for key, value in self.headers.items():
            if key.lower() not in {"authorization", "content-type", "content-length"}:
                env["HTTP_" + key.upper().replace("-", "_")] = value
        result = subprocess.run(
            ["git", "http-backend"],
            input=body,
            capture_output=True,
            env=env,
            timeout=_BACKEND_TIMEOUT,
            check=False,
        )
        head, content = _split_cgi_output(result.stdout)
        status = 200 if result.returncode == 0 else 500
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").splitlines():
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key:
                headers.append((key, value.strip()))
        return status, headers, content


def _split_cgi_output(output: bytes) -> tuple[bytes, bytes]:
    """A CGI answer's header block and body (git ends header lines with CRLF)."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, content = output.partition(separator)
        if found:
            return head, content
    return output, b""
