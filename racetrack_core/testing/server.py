"""A real ``racetrack up`` for end-to-end tests, on free 127.0.0.1 ports.

:class:`RacetrackServer` runs ``python -m racetrack_cli up`` as a child process with a home
folder and a database of its own, waits until Lifecycle and Pub answer, and talks to them over
HTTP as a client would: log in as the admin, call the Lifecycle API, deploy and wait, call a job
through Pub. The server loads the plugins installed in the test's own Python environment, so a
job-type plugin can be deployed and called end to end::

    with RacetrackServer(tmp_path / "home") as server:
        server.login()
        record = server.deploy_folder(Path("tests/my-job"))  # a folder with a job.yaml
        assert record["status"] == "done", f"{record}\n{server.log()}"
        assert server.call("my-job", "latest", {"number": 7}).status_code == 200

It depends only on the command line (never on the server's modules), and imports httpx and the
rest of Racetrack only when used.

The pytest plugin :mod:`racetrack_core.testing.plugin` offers it as the ``racetrack_server``
fixture.
"""

from __future__ import annotations

import copy
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

QUICK_ENV: Mapping[str, str] = {
    "RACETRACK_JOB_WATCH_INTERVAL": "0.5",
    "RACETRACK_PUB_AUTH_CACHE_TTL": "1",
}
"""Settings that make a test server react quickly: jobs are watched every 0.5 s and Pub keeps
permission answers for 1 s."""

SERVICES = ("lifecycle", "pub", "dashboard")
"""The services of ``racetrack up``, each on a port of its own (the keys of ``ports``)."""

AUTH_HEADER = "X-Racetrack-Auth"


class RacetrackServerError(RuntimeError):
    """The server did not start or stop, or a deployment did not finish; the message carries
    the server's log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RacetrackServer:
    """``racetrack up`` as a child process; :meth:`start` and :meth:`stop` may be called again.

    ``home`` is the server's folder (created if missing); ``database_url`` defaults to a SQLite
    file in it. The admin's password is ``admin_password`` (random unless given). The server's
    environment is this process's, plus ``RACETRACK_ADMIN_PASSWORD`` and ``env``. Its output
    goes to ``log_path`` (next to ``home`` unless given), appended to on each start.

    The ports are chosen on the first start and kept, so that URLs stay valid across restarts.
    ``token`` is the token that :meth:`api` and :meth:`call` send unless told otherwise; it is
    set by :meth:`login`, and :meth:`with_token` addresses the same server with another one.
    """

    def __init__(
        self,
        home: Path,
        database_url: str | None = None,
        *,
        admin_password: str | None = None,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        verbose: bool = True,
        start_timeout: float = 90,
        stop_timeout: float = 30,
        python: str | None = None,
    ) -> None:
        self.home = Path(home)
        self.database_url = database_url or f"sqlite:///{self.home / 'racetrack.db'}"
        self.admin_password = admin_password or secrets.token_urlsafe(18)
        self.env: dict[str, str] = dict(env or {})
        self.log_path = log_path or self.home.with_name(f"{self.home.name}-up.log")
        self.verbose = verbose
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        #: The Python that runs the server (its environment is the server's: the plugins it
        #: has, and where ``racetrack plugin install`` puts new ones); this one by default.
        self.python = python or sys.executable
        self.ports: dict[str, int] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self.token = ""
        self._log_start = 0

    # -- addresses ------------------------------------------------------------------------------

    @property
    def remote(self) -> str:
        """What ``racetrack set remote`` takes: Lifecycle's scheme, host and port."""
        return f"http://127.0.0.1:{self._port('lifecycle')}"

    @property
    def lifecycle(self) -> str:
        """Lifecycle's base URL (``.../lifecycle``); its API is under ``/api/v1``."""
        return f"{self.remote}/lifecycle"

    @property
    def pub(self) -> str:
        """Pub's base URL (``.../pub``); jobs are under ``/job/{name}/{version}``."""
        return f"http://127.0.0.1:{self._port('pub')}/pub"

    @property
    def dashboard(self) -> str:
        """The Dashboard's base URL."""
        return f"http://127.0.0.1:{self._port('dashboard')}"

    def _port(self, service: str) -> int:
        if not self.ports:
            raise RacetrackServerError("the server has no ports until it is started")
        return self.ports[service]

    # -- the process ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server process is running."""
        return self.process is not None and self.process.poll() is None

    def command(self) -> list[str]:
        """The command line that starts the server (ports chosen on the first call)."""
        if not self.ports:
            self.ports = {service: free_port() for service in SERVICES}
        return [
            self.python,
            "-m",
            "racetrack_cli",
            "up",
            "--home",
            str(self.home),
            "--db",
            self.database_url,
            "--lifecycle-port",
            str(self.ports["lifecycle"]),
            "--pub-port",
            str(self.ports["pub"]),
            "--dashboard-port",
            str(self.ports["dashboard"]),
            *(["--verbose"] if self.verbose else []),
        ]

    def start(self) -> None:
        """Start the server and wait until Pub is live and Lifecycle answers.

        Raises :class:`RacetrackServerError`, with this start's log, if the server exits or
        does not answer within ``start_timeout`` seconds (it is then stopped).
        """
        import httpx

        if self.running:
            raise RacetrackServerError("the server is already running")
        self.home.mkdir(parents=True, exist_ok=True)
        command = self.command()
        env = {**os.environ, "RACETRACK_ADMIN_PASSWORD": self.admin_password, **self.env}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._log_start = log.tell()
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RacetrackServerError(
                    f"racetrack up exited with {self.process.returncode}:\n{self._this_log()}"
                )
            try:
                if (
                    httpx.get(f"{self.pub}/live", timeout=1).status_code == 200
                    and httpx.get(f"{self.lifecycle}/api/v1/info", timeout=1).status_code == 200
                ):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self._kill()
        raise RacetrackServerError(
            f"racetrack up did not answer within {self.start_timeout} s:\n{self._this_log()}"
        )

    def stop(self) -> None:
        """Stop the server with Ctrl-C (SIGINT) and wait; nothing to do if it is not running.

        If it has not exited after ``stop_timeout`` seconds it is killed, and
        :class:`RacetrackServerError` is raised with its log.
        """
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            raise RacetrackServerError(
                f"racetrack up did not stop on Ctrl-C within {self.stop_timeout} s:\n"
                f"{self._this_log()}"
            ) from None

    def _kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        """Everything the server printed, over all its starts."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _this_log(self) -> str:
        with self.log_path.open("rb") as log:
            log.seek(self._log_start)
            return log.read().decode(errors="replace")

    def __enter__(self) -> RacetrackServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- talking to it --------------------------------------------------------------------------

    def with_token(self, token: str) -> RacetrackServer:
        """The same running server, addressed with another subject's token."""
        other = copy.copy(self)
        other.token = token
        return other

    def login(self, username: str = "admin", password: str | None = None) -> str:
        """Log in (as the admin by default); keep the token in ``token`` and return it."""
        import httpx

        answer = httpx.post(
            f"{self.lifecycle}/api/v1/users/login",
            json={"username": username, "password": password or self.admin_password},
            timeout=30,
        )
        if answer.status_code != 200:
            raise RacetrackServerError(
                f"login as {username} answered {answer.status_code}: {answer.text}"
            )
        token: str = answer.json()["token"]
        self.token = token
        return token

    def _headers(self, token: str | None, headers: Mapping[str, str] | None) -> dict[str, str]:
        token = self.token if token == "" else token
        return {**({AUTH_HEADER: token} if token else {}), **(headers or {})}

    def api(
        self,
        method: str,
        path: str,
        *,
        token: str | None = "",
        headers: Mapping[str, str] | None = None,
        timeout: float = 60,
        **kwargs: Any,
    ) -> httpx.Response:
        """Request Lifecycle's ``/api/v1{path}``; ``kwargs`` go to :func:`httpx.request`.

        ``token`` defaults to ``self.token``; None sends none.
        """
        import httpx

        return httpx.request(
            method,
            f"{self.lifecycle}/api/v1{path}",
            headers=self._headers(token, headers),
            timeout=timeout,
            **kwargs,
        )

    def deploy(self, body: Mapping[str, Any], timeout: float = 180) -> dict[str, Any]:
        """``POST /deploy`` with ``body``, poll ``/deploy/{id}`` until the deployment is no
        longer in progress, and return its record (whose ``status`` is ``done`` or ``failed``).

        Raises :class:`RacetrackServerError` if the request is refused or the deployment does
        not finish within ``timeout`` seconds.
        """
        answer = self.api("POST", "/deploy", json=dict(body))
        if answer.status_code != 200:
            raise RacetrackServerError(f"POST /deploy answered {answer.status_code}: {answer.text}")
        deployment_id = answer.json()["id"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record: dict[str, Any] = self.api("GET", f"/deploy/{deployment_id}").json()
            if record["status"] != "in_progress":
                return record
            time.sleep(0.2)
        raise RacetrackServerError(
            f"deployment {deployment_id} did not finish within {timeout} s:\n{self.log()}"
        )

    def deploy_folder(
        self,
        folder: Path,
        *,
        manifest: Mapping[str, Any] | None = None,
        timeout: float = 180,
        **body: Any,
    ) -> dict[str, Any]:
        """:meth:`deploy` a job folder as an uploaded build context.

        The manifest is the folder's ``job.yaml``, with the keys of ``manifest`` replaced;
        ``body`` adds other fields of the request (``force``, ``secret_vars``...).
        """
        from racetrack_core.manifest import load_manifest
        from racetrack_core.source import pack_build_context

        data = {**load_manifest(Path(folder) / "job.yaml").data, **(manifest or {})}
        request = {"manifest": data, "build_context": pack_build_context(Path(folder)), **body}
        return self.deploy(request, timeout)

    def call(
        self,
        name: str,
        version: str,
        payload: Any,
        token: str | None = "",
        *,
        path: str = "/api/v1/perform",
        timeout: float = 30,
    ) -> httpx.Response:
        """POST ``payload`` (as JSON) to job ``name`` ``version`` through Pub.

        ``token`` defaults to ``self.token``; None sends none.
        """
        import httpx

        return httpx.post(
            f"{self.pub}/job/{name}/{version}{path}",
            json=payload,
            headers=self._headers(token, None),
            timeout=timeout,
        )

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RacetrackServer {self.home} {state} ports={self.ports}>"
