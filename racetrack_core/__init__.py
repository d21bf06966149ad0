"""Racetrack's core: hook specifications, the plugin manager, registries and the manifest.

Importing this package loads no plugin, and stays cheap: the plugin manager is imported on
first use. A program that embeds Racetrack builds a :class:`PluginManager`, registers plugins
of its own if it has any, and calls :meth:`PluginManager.load` once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from racetrack_core.hookspecs import hookimpl, hookspec

if TYPE_CHECKING:
    from racetrack_core.plugins import PluginManager

__version__ = "0.1.0"

__all__ = ["PluginManager", "__version__", "hookimpl", "hookspec"]


def __getattr__(name: str) -> Any:
    if name == "PluginManager":
        from racetrack_core.plugins import PluginManager

        return PluginManager
    raise AttributeError(f"module 'racetrack_core' has no attribute {name!r}")
