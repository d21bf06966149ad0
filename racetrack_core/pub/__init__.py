"""Pub, the gateway: authenticates every call to a job and forwards it to the right version.

``create_app(PubConfig(...))`` gives a pure ASGI app; see ``docs/pub.md``.
"""

from __future__ import annotations

from racetrack_core.pub.app import PubApp, create_app
from racetrack_core.pub.config import PubConfig

__all__ = ["PubApp", "PubConfig", "create_app"]
