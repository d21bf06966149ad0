"""Pub as a pure ASGI app, the embeddable one: ``create_app(PubConfig(...))``.

Only this subpackage speaks ASGI: the app and its routes (:mod:`.app`), the HTTP proxy
(:mod:`.proxy`), the WebSocket relay (:mod:`.websockets`), the asynchronous calls
(:mod:`.asynccalls`), the answers it sends (:mod:`.responses`) and uvicorn with Pub's protocol
(:mod:`.serving`, ``python -m racetrack_core.pub.asgi``). Behind the front server
(:mod:`racetrack_core.pub.front`) it answers what the front does not.
"""

from __future__ import annotations

from racetrack_core.pub.asgi.app import PubApp, create_app

__all__ = ["PubApp", "create_app"]
