"""Running the services: ``racetrack up`` (all of them in one process) and ``racetrack serve``.

Each service is an app built by its own factory; this module only prepares the home folder
and the database, and runs the apps on uvicorn servers that share one event loop, so that
Ctrl-C (or SIGTERM) stops them together and every job they started.

Pub is served as :func:`racetrack_core.pub.assembly.assemble` puts it together: its front
server owns Pub's public port, answers job calls and probes itself and forwards every other
route to Pub's ASGI app, served on 127.0.0.1 and a port the kernel picks, in the same loop
(docs/pub.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from racetrack_core.errors import RacetrackError
from racetrack_core.http_heads import HeadLimitedProtocol
from racetrack_core.lifecycle import accounts
from racetrack_core.lifecycle.app import create_app as create_lifecycle_app
from racetrack_core.plugins import PluginManager
from racetrack_core.pub.assembly import PubServer, assemble
from racetrack_core.security import SecretBox, new_token, write_private_file
from racetrack_core.settings import INTERNAL_TOKEN_FILE, Settings
from racetrack_core.storage.database import connect, migrate

log = logging.getLogger("racetrack.server")

SERVICES = ("lifecycle", "pub", "dashboard")


@dataclass(frozen=True)
class Service:
    name: str
    app: Any
    port: int
    url: str
    #: Pub: the front server owns ``port``, and ``app`` (a ``PubApp``) answers behind it.
    fronted: bool = False


def prepare(settings: Settings, say: Callable[[str], None]) -> Settings:
    """Create the home folder, migrate the database, make sure the admin account exists, and
    make the services' internal token on the first start; return the settings with it."""
    settings.home.mkdir(parents=True, exist_ok=True)
    # A volume's root (Kubernetes: owned by root, its group the pod's fsGroup) keeps the mode
    # its owner gave it; only its owner may change that. The files written below are 0600.
    if settings.home.stat().st_uid == os.geteuid():
        settings.home.chmod(0o700)
    # Replicas that share the home folder and start together make its files once, one at a
    # time: the first writes the token and the key, the others read them.
    with _home_lock(settings.home):
        token_file = settings.home / INTERNAL_TOKEN_FILE
        if not settings.internal_token and token_file.is_file():
            settings = settings.replace(internal_token=token_file.read_text().strip())
        if not settings.internal_token:
            token = new_token()
            write_private_file(token_file, token + "\n")
            settings = settings.replace(internal_token=token)
        SecretBox(settings.home / "secret.key")  # made now, while the lock is held
        engine = connect(
            settings.database_url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        )
        try:
            migrate(engine)
            admin = accounts.ensure_admin(engine, settings.home, settings.admin_password)
        finally:
            engine.dispose()
    if admin.generated_password:
        say(
            f"Created the admin account. Its password (shown once, also in "
            f"{admin.password_file}): {admin.generated_password}"
        )
    elif admin.created:
        say("Created the admin account with the password from RACETRACK_ADMIN_PASSWORD.")
    return settings


@contextlib.contextmanager
def _home_lock(home: Path) -> Iterator[None]:
    with (home / ".start.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_services(
    settings: Settings, plugins: PluginManager, names: Sequence[str] = SERVICES
) -> list[Service]:
    """The apps of the named services, each with its port and public URL."""
    from racetrack_core.dashboard import create_app as create_dashboard_app
    from racetrack_core.pub import create_app as create_pub_app

    base = f"http://{settings.host}"
    services = []
    for name in names:
        if name == "lifecycle":
            app: Any = create_lifecycle_app(settings, plugins)
            services.append(
                Service(name, app, settings.lifecycle_port, settings.external_lifecycle_url)
            )
        elif name == "pub":
            app = create_pub_app(settings.pub)
            services.append(
                Service(name, app, settings.pub_port, settings.external_pub_url, fronted=True)
            )
        elif name == "dashboard":
            app = create_dashboard_app(settings)
            url = f"{base}:{settings.dashboard_port}/dashboard"
            services.append(Service(name, app, settings.dashboard_port, url))
        else:
            raise ValueError(f"unknown service {name!r}; choose from {', '.join(SERVICES)}")
    return services


class ServerError(RacetrackError):
    """A service cannot start, for a reason the operator can fix (such as a port in use)."""


def run(settings: Settings, services: Sequence[Service], say: Callable[[str], None]) -> None:
    """Serve every service until Ctrl-C or SIGTERM; then stop them (and their jobs).

    Every port is bound before anything starts (the internal one of Pub's ASGI app too), so a
    port in use is one clear error and no service is left half-started.
    """
    sockets: list[socket.socket] = []
    pubs: dict[str, PubServer] = {}
    try:
        for service in services:
            sockets.append(_bind(settings.host, service))
            if service.fronted:
                pubs[service.name] = assemble(service.app)
        # What starting made (modules, apps, plugins) lives as long as the server: keep it out
        # of the collector's full passes, which would otherwise pause requests now and then.
        gc.freeze()
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(_serve_all(settings, services, sockets, pubs, say))
    finally:
        for sock in sockets:
            sock.close()
        for pub in pubs.values():
            pub.close()


def _bind(host: str, service: Service) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, service.port))
    except OSError as exc:
        sock.close()
        raise ServerError(
            f"cannot listen on {host}:{service.port} for {service.name}: {exc.strerror}; "
            f"stop what uses the port or choose another with --{service.name}-port"
        ) from None
    sock.set_inheritable(True)
    return sock


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (it roughly halves Pub's per-call overhead)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _serve_all(
    settings: Settings,
    services: Sequence[Service],
    sockets: Sequence[socket.socket],
    pubs: Mapping[str, PubServer],
    say: Callable[[str], None],
) -> None:
    servers: list[uvicorn.Server] = []
    runs: list[Coroutine[Any, Any, None]] = []
    fronts: list[tuple[PubServer, socket.socket]] = []
    for service, sock in zip(services, sockets, strict=True):
        pub = pubs.get(service.name)
        if pub is not None:
            # Pub's front takes the public socket once the ASGI app answers behind it.
            servers.append(pub.backend_server)
            runs.append(pub.serve_backend())
            fronts.append((pub, sock))
        else:
            server = _server(settings, service)
            servers.append(server)
            runs.append(server.serve(sockets=[sock]))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    front_stops: list[asyncio.Task[None]] = []

    def stop(*_: Any) -> None:
        if not stopping.is_set():
            # The front servers stop taking calls while the apps behind them drain theirs.
            front_stops.extend(loop.create_task(pub.stop_front()) for pub, _ in fronts)
        stopping.set()
        for server in servers:
            server.should_exit = True

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
    tasks = [asyncio.create_task(run) for run in runs]
    try:
        while not all(server.started for server in servers):
            if any(task.done() for task in tasks):
                stop()
                break
            await asyncio.sleep(0.05)
        else:
            for pub, sock in fronts:
                await pub.open_front(sock=sock)
            for service in services:
                say(f"{service.name:<10} {service.url}")
            say("Racetrack is up. Press Ctrl-C to stop.")
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await asyncio.gather(*front_stops)
        for pub, _ in fronts:
            await pub.stop_front()  # those started after the signal, or when no signal came
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise failures[0]
    if not stopping.is_set() and any(not s.started for s in servers):
        say("a service could not start (is its port in use?); stopped")
        sys.exit(1)
    say("Racetrack stopped.")


def _server(settings: Settings, service: Service) -> uvicorn.Server:
    """Lifecycle's or the Dashboard's server (Pub has its own): the client is the TCP peer,
    or, from the ``trusted_proxies``, the address they forward; request heads are limited in
    size and time as Pub's are."""
    proxies = settings.trusted_proxies.strip()
    server = uvicorn.Server(
        uvicorn.Config(
            service.app,
            host=settings.host,
            port=service.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            proxy_headers=bool(proxies),
            forwarded_allow_ips=proxies or None,
            timeout_graceful_shutdown=5,
            # uvicorn calls http(...) like a class, but its annotation asks for one.
            http=functools.partial(  # type: ignore[arg-type]
                HeadLimitedProtocol, head_timeout=settings.request_head_timeout
            ),
        )
    )
    # The loop's signal handlers stop all servers together; uvicorn must not replace them.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    return server
