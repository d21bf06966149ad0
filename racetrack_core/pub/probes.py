"""Pub's probes, ``GET /live``, ``/ready`` and ``/health``: the same answers from both servers.

Each function gives the status and the JSON payload; the ASGI app
(:mod:`racetrack_core.pub.asgi.app`) and the front server (:mod:`racetrack_core.pub.front`)
send them in their own way. ``ready`` is whether the server can forward calls (its session or
pool is open).
"""

from __future__ import annotations

from racetrack_core import __version__

Probe = tuple[int, dict[str, object]]


def live() -> Probe:
    return 200, {"service": "pub", "live": True}


def ready(is_ready: bool) -> Probe:
    return (200 if is_ready else 503), {"service": "pub", "ready": is_ready}


def health(is_ready: bool, lifecycle_url: str) -> Probe:
    return 200, {
        "service": "pub",
        "version": __version__,
        "status": "pass",
        "live": True,
        "ready": is_ready,
        "auth_required": True,
        "lifecycle_url": lifecycle_url,
    }
