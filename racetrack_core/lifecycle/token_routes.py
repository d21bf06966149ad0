"""Routes of the Lifecycle API: token (filled in by the auth issue's work)."""

from __future__ import annotations

from starlette.routing import BaseRoute


def routes() -> list[BaseRoute]:
    return []
