"""Pub, the gateway: authenticates every call to a job and forwards it to the right version.

``create_app(PubConfig(...))`` gives a pure ASGI app (:mod:`racetrack_core.pub.asgi`);
:func:`racetrack_core.pub.assembly.assemble` puts the front server
(:mod:`racetrack_core.pub.front`) before it, as ``racetrack up`` serves Pub. See ``docs/pub.md``.
"""

from __future__ import annotations

from racetrack_core.pub.asgi.app import PubApp, create_app
from racetrack_core.pub.config import PubConfig

__all__ = ["PubApp", "PubConfig", "create_app"]
