"""Pub on a purpose-built asyncio server (an experiment; see docs/pub.md, "The fast server").

The ASGI app (:func:`racetrack_core.pub.create_app`) stays Pub's reference, for embedding in
any ASGI server. :class:`FastPub` serves the same routes with the same answers, on its own
``asyncio.Protocol`` HTTP/1.1 server (``httptools``) and its own pool of keep-alive
connections to jobs, so that a proxied call costs as few system calls as it can: one read
and one write on each side when the bodies are small.

``python -m racetrack_core.pub.fastserver [--host H] [--port P]`` serves it, configured from
``PUB_*`` variables.
"""

from __future__ import annotations

from racetrack_core.pub.fastserver.gateway import FastPub
from racetrack_core.pub.fastserver.serving import serve

__all__ = ["FastPub", "serve"]
