"""Real servers on 127.0.0.1 for Pub's tests: a job, a Lifecycle stand-in, and a runner.

Each runs under uvicorn in a thread of the test process, on a port the kernel picks. The
Lifecycle stand-in implements the ``can-call-job`` contract (version resolution included) and
counts the calls it answers; the end-to-end tests with the real Lifecycle live elsewhere.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

ADMIN_TOKEN = "admin-token-7f3a"
GUEST_TOKEN = "guest-token-91c2"
LARGE_CHUNK = b"0123456789abcdef" * 4096  # 64 KiB
LARGE_CHUNKS = 80  # 5 MiB in all


class Server:
    """An ASGI app served by uvicorn in a thread, on 127.0.0.1 and a free port (or ``port``)."""

    def __init__(
        self,
        app: Any,
        lifespan: Literal["auto", "on", "off"] = "auto",
        proxy_headers: bool = True,
        http: Any = "auto",
        port: int = 0,
    ) -> None:
        self._socket = socket.socket()
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", port))
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            lifespan=lifespan,
            proxy_headers=proxy_headers,
            http=http,
            log_level="warning",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start {app!r}")
            time.sleep(0.01)

    def _run(self) -> None:
        self._server.run(sockets=[self._socket])

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._socket.close()


def refused_url() -> str:
    """The address of a port where nothing listens (it was bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- the job ------------------------------------------------------------------------------


async def job_endpoint(request: Request) -> Response:
    path = request.path_params.get("path", "")
    if path == "large":

        async def chunks() -> Any:
            for _ in range(LARGE_CHUNKS):
                yield LARGE_CHUNK

        return StreamingResponse(chunks(), media_type="application/octet-stream")
    if path == "slow":
        await asyncio.sleep(3)
        return JSONResponse({"slow": True})
    if path == "redirect":
        return RedirectResponse(f"{request.base_url}pub/job/adder/1.2.0/echo", status_code=302)
    if path.startswith("status/"):
        return JSONResponse({"status": int(path[7:])}, status_code=int(path[7:]))
    body = await request.body()
    return JSONResponse(
        {
            "method": request.method,
            "path": request.scope["raw_path"].decode(),
            "query": request.url.query,
            "headers": [[name, value] for name, value in request.headers.items()],
            "body": body.decode("latin-1"),
        },
        headers={"x-job-header": "from-job"},
    )


def job_app() -> Starlette:
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return Starlette(
        routes=[
            Route("/pub/job/{name}/{version}/{path:path}", job_endpoint, methods=methods),
            Route("/pub/job/{name}/{version}", job_endpoint, methods=methods),
        ]
    )


# --- the Lifecycle stand-in ---------------------------------------------------------------


@dataclass
class LifecycleStandIn:
    """Answers ``can-call-job`` as Lifecycle does; ``jobs`` maps name -> version -> address,
    ``instances`` name -> the addresses of every instance of a replicated job."""

    jobs: dict[str, dict[str, str]] = field(default_factory=dict)
    instances: dict[str, list[str]] = field(default_factory=dict)
    #: Jobs whose job type serves no Swagger page of Racetrack's at /docs (``docs_page``).
    foreign_docs: set[str] = field(default_factory=set)
    calls: int = 0
    seen_headers: list[dict[str, str]] = field(default_factory=list)
    #: Pub's reports of last call times: each body, with the token and the status answered.
    call_time_reports: list[dict[str, Any]] = field(default_factory=list)
    #: Statuses to answer the next reports with (then 200), to fail some on purpose.
    call_time_statuses: list[int] = field(default_factory=list)
    server: Server | None = None

    def resolve(self, name: str, version: str) -> str | None:
        versions = sorted(
            (v for v in self.jobs.get(name, {}) if "-" not in v),
            key=lambda v: tuple(int(part) for part in v.split(".")),
        )
        if version == "latest":
            return versions[-1] if versions else None
        if version.endswith(".x"):
            prefix = version[:-1]
            matching = [v for v in versions if v.startswith(prefix)]
            return matching[-1] if matching else None
        return version if version in self.jobs.get(name, {}) else None

    async def can_call_job(self, request: Request) -> JSONResponse:
        self.calls += 1
        self.seen_headers.append(dict(request.headers))
        name, version = request.path_params["name"], request.path_params["version"]
        token = request.headers.get("x-racetrack-auth")
        if token is None:
            return self.error(401, "no header X-Racetrack-Auth: not logged in", "unauthenticated")
        if token not in (ADMIN_TOKEN, GUEST_TOKEN):
            return self.error(401, "invalid auth token", "unauthenticated")
        resolved = self.resolve(name, version)
        if resolved is None:
            return self.error(404, f"no job named {name} in version {version}", "not_found")
        if token == GUEST_TOKEN:
            return self.error(403, f"User guest may not call job {name}", "forbidden")
        job: dict[str, Any] = {
            "name": name,
            "version": resolved,
            "status": "running",
            "internal_name": self.jobs[name][resolved],
        }
        if name in self.instances:
            job["replica_internal_names"] = self.instances[name]
        docs_page = name not in self.foreign_docs
        return JSONResponse({"job": job, "caller": "User admin", "docs_page": docs_page})

    @staticmethod
    def error(status: int, message: str, kind: str) -> JSONResponse:
        return JSONResponse({"error": message, "type": kind}, status_code=status)

    async def call_times(self, request: Request) -> JSONResponse:
        status = self.call_time_statuses.pop(0) if self.call_time_statuses else 200
        report = {"token": request.headers.get("x-racetrack-auth"), "status": status}
        self.call_time_reports.append({**report, **await request.json()})
        return JSONResponse({"updated": 0}, status_code=status)

    def app(self) -> Starlette:
        path = "/api/v1/auth/can-call-job/{name}/{version}/{path:path}"
        return Starlette(
            routes=[
                Route(path, self.can_call_job),
                Route("/api/v1/job/call-times", self.call_times, methods=["POST"]),
            ]
        )


def admin(**headers: str) -> dict[str, str]:
    """Request headers carrying the admin's token, and ``headers``."""
    return {"X-Racetrack-Auth": ADMIN_TOKEN, **headers}
