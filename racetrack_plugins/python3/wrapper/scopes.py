"""What the wrapper reads off an ASGI scope, shared by the call router and the webview."""

from __future__ import annotations

from starlette.types import Scope


def route_path(scope: Scope) -> str:
    """The path without the ``root_path`` that a server or proxy put in front (as Starlette)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if (
        root_path
        and path.startswith(root_path)
        and path[len(root_path) : len(root_path) + 1] == "/"
    ):
        return path[len(root_path) :]
    return path
