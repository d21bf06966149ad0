"""kmock's in-memory Kubernetes API, served on 127.0.0.1 from a thread of its own.

The Kubernetes target's real client (lightkube, over HTTP) talks to it, so its tests see the
requests it sends and the objects the API would store. kmock is asyncio-based and our driver is
synchronous: the emulator runs in its own event loop in a background thread, and the tests
reach into it only through ``call`` (run in that loop) or by reading what it recorded.

kmock 0.8 stores objects created (POST), patched (PATCH) and deleted, and serves them on get,
list and watch. Two gaps matter here, and what stands in for them is kept small:

- it does not route ``PUT`` (replace), which the target uses to update an object: ``Emulator``
  adds it, replacing the stored object whole, stamping a ``resourceVersion`` and answering
  409 Conflict to a replace that carries a stale one, as an API server does;
- it runs no controllers: no ReplicaSet or pod appears, no status changes. Tests write pods and
  Deployment status through the API themselves, as the kubelet and controllers would.

It also ignores label selectors when listing (the tests assert that the selector was sent) and
serves no pod logs unless a test declares them.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import threading
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import kmock
from aiohttp.test_utils import RawTestServer

RESOURCES = (
    "apps/v1/deployments",
    "v1/services",
    "v1/secrets",
    "v1/pods",
    "networking.k8s.io/v1/networkpolicies",
)


@attrs.define(kw_only=True)
class Emulator(kmock.KubernetesEmulator):
    """kmock's emulator, taught to replace an object (``PUT``)."""

    _versions: Iterator[int] = attrs.field(factory=lambda: itertools.count(1), init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.fallback[kmock.method.PUT] << self._serve_replace

    async def _serve_replace(self, request: kmock.Request) -> dict[str, Any]:
        if request.resource is None or request.name is None:
            raise kmock.KubernetesNotFoundError()
        key = (request.resource, request.namespace, request.name)
        async with self._lock:
            if key not in self.objects or self.objects[key].deleted:
                raise kmock.KubernetesObjectNotFoundError()
            stored = self.objects[key].raw
            held = (stored.get("metadata") or {}).get("resourceVersion")
            sent = (request.data.get("metadata") or {}).get("resourceVersion")
            if held and sent and held != sent:
                raise kmock.KubernetesError(
                    status=409, reason="Conflict", message="the object has been modified"
                )
            replacing = dict(request.data)
            replacing["metadata"] = {
                **replacing.get("metadata", {}),
                "resourceVersion": str(next(self._versions)),
            }
            self.objects[key].create(replacing)
            return dict(self.objects[key].raw)


class TLSServer(RawTestServer):
    """aiohttp's raw test server, serving HTTPS with a given context."""

    context: ssl.SSLContext | None = None

    async def start_server(self, loop: Any = None, **kwargs: Any) -> None:
        await super().start_server(loop=loop, ssl=self.context, **kwargs)


class RunningEmulator:
    """An ``Emulator`` served on 127.0.0.1 (HTTPS with ``tls``) from a background thread."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.url = ""
        self.handler: Emulator | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="kmock")

    def __enter__(self) -> RunningEmulator:
        self._thread.start()
        self._ready.wait(30)
        if self._failure is not None or self.handler is None:
            raise RuntimeError(f"the emulator did not start: {self._failure!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        if self._thread.is_alive():  # a request still open keeps the server from stopping
            raise RuntimeError("the emulator did not stop: a client left a request open")
        self._loop.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as error:
            self._failure = error
            self._ready.set()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        server = type("ServedEmulator", (TLSServer,), {"context": self.tls})

        async with Emulator() as handler, kmock.Server(handler, server_cls=server) as served:
            for resource in RESOURCES:
                handler.resources[resource] = kmock.ResourceInfo()
            self.handler = handler
            self.url = str(served.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def call(self, function: Callable[[Emulator], Any]) -> Any:
        """Run ``function(handler)`` in the emulator's loop (for changes to its state)."""
        assert self.handler is not None
        handler = self.handler

        async def run() -> Any:
            return function(handler)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    # ------------------------------------------------------------ what it saw

    def requests(self) -> list[kmock.Request]:
        assert self.handler is not None
        return list(self.call(lambda handler: list(handler)))

    def stored(self, plural: str, name: str | None = None) -> list[dict[str, Any]]:
        """The live objects of a resource (by plural, like ``deployments``)."""

        def pick(handler: Emulator) -> list[dict[str, Any]]:
            return [
                dict(obj.raw)
                for (resource, _, object_name), obj in handler.objects.items()
                if resource.plural == plural
                and (name is None or object_name == name)
                and not obj.deleted
            ]

        return list(self.call(pick))
