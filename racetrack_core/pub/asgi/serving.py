"""Serving Pub: uvicorn with a protocol that sends each small answer in one write, and workers.

uvicorn writes an answer's status line and headers as soon as the app sends
``http.response.start``, then the body in a second write: two system calls, and two wake-ups
of the caller, per answer. :class:`PubHttpProtocol` is uvicorn's httptools protocol over a
transport that holds a header block until the end of the event-loop iteration, so that a body
sent right after it (as Pub does for every small answer) leaves in the same write. A header
block with no body behind it yet (a streamed answer) still leaves in that iteration.

:func:`serve` runs Pub with that protocol, in one process or several that share the port
(``python -m racetrack_core.pub --workers 2``). The limits on request heads are every
Racetrack server's (:mod:`racetrack_core.http_heads`).
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import logging
from typing import Any, cast

import uvicorn

from racetrack_core.http_heads import HeadLimitedProtocol
from racetrack_core.pub.config import PubConfig

logger = logging.getLogger("racetrack.pub")

#: Header blocks longer than this are written at once (coalescing would only copy them).
_MAX_HELD = 16_384


class CoalescingTransport(asyncio.Transport):
    """A transport that holds an HTTP header block until the next write, or the loop's turn."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
        elif (
            type(data) is bytes
            and data.startswith(b"HTTP/1.")
            and data.endswith(b"\r\n\r\n")
            and len(data) <= _MAX_HELD
        ):
            self._held = data
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        """Write what is held, if anything."""
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held)

    def writelines(self, list_of_data: Any) -> None:
        self.flush()
        self._transport.writelines(list_of_data)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held or b"")

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()


class PubHttpProtocol(HeadLimitedProtocol):
    """uvicorn's httptools protocol with the limits on request heads every Racetrack server
    has (:class:`racetrack_core.http_heads.HeadLimitedProtocol`, its deadline Pub's
    ``request_head_timeout``), over a :class:`CoalescingTransport`. Pass ``pub_config`` with
    functools.partial.
    """

    def __init__(self, *args: Any, pub_config: PubConfig | None = None, **kwargs: Any) -> None:
        head_timeout = (pub_config or PubConfig()).request_head_timeout
        super().__init__(*args, head_timeout=head_timeout, **kwargs)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but they behave as one.
        super().connection_made(CoalescingTransport(cast(asyncio.Transport, transport), self.loop))


def app_from_env() -> Any:
    """Pub configured from ``PUB_*`` variables (the factory that worker processes import)."""
    from racetrack_core.pub.asgi.app import create_app

    return create_app(PubConfig.from_env())


def serve(host: str = "127.0.0.1", port: int = 7105, workers: int = 1) -> None:
    """Serve Pub, configured from the environment, until SIGINT or SIGTERM.

    With ``workers`` above 1, that many processes accept calls on one shared socket; each has
    its own session, permission cache and metrics (so ``/metrics`` answers for one worker).
    """
    uvicorn.run(
        f"{__name__}:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "auto",
        # A partial of a module-level class pickles, for the worker processes; uvicorn calls
        # http(...) like a class, but its annotation asks for one.
        http=functools.partial(PubHttpProtocol, pub_config=PubConfig.from_env()),  # type: ignore[arg-type]
        lifespan="on",
        # Pub extends X-Forwarded-For itself; uvicorn must not trust callers' headers.
        proxy_headers=False,
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
