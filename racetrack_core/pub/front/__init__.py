"""Pub's front server: what ``racetrack up`` and ``racetrack serve pub`` serve on Pub's port.

:class:`PubFront` answers job calls and probes on its own ``asyncio.Protocol`` HTTP/1.1 server
(``httptools``) with its own pool of keep-alive connections to jobs, so that a proxied call
costs as few system calls as it can: one read and one write on each side when the bodies are
small. Every other route (the asynchronous calls) and every WebSocket handshake it forwards to
Pub's ASGI app (:mod:`racetrack_core.pub.asgi`), which runs behind it on 127.0.0.1 in the same
event loop; :func:`racetrack_core.pub.assembly.assemble` puts the two together. See docs/pub.md.
"""

from __future__ import annotations

from racetrack_core.pub.front.backend import Backend
from racetrack_core.pub.front.server import PubFront

__all__ = ["Backend", "PubFront"]
