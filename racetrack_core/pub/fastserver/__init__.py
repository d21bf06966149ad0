"""Pub on a purpose-built asyncio server: what ``racetrack up`` and ``racetrack serve pub`` run.

:class:`FastPub` answers job calls and probes on its own ``asyncio.Protocol`` HTTP/1.1 server
(``httptools``) with its own pool of keep-alive connections to jobs, so that a proxied call
costs as few system calls as it can: one read and one write on each side when the bodies are
small. Every other route (the asynchronous calls) it forwards to Pub's ASGI app
(:func:`racetrack_core.pub.create_app`), which runs behind it on 127.0.0.1 in the same event
loop (:class:`PubServer`) and stays the way to embed Pub in any ASGI server. See docs/pub.md.

``python -m racetrack_core.pub.fastserver [--host H] [--port P]`` serves both, configured from
``PUB_*`` variables.
"""

from __future__ import annotations

from racetrack_core.pub.fastserver.backend import Backend
from racetrack_core.pub.fastserver.gateway import FastPub
from racetrack_core.pub.fastserver.serving import PubServer, serve

__all__ = ["Backend", "FastPub", "PubServer", "serve"]
