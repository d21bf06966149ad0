"""Racetrack's core: hook specifications, the plugin manager, registries and the manifest.

Importing this package loads no plugin. A program that embeds Racetrack builds a
:class:`PluginManager`, registers plugins of its own if it has any, and calls
:meth:`PluginManager.load` once.
"""

from racetrack_core.hookspecs import hookimpl, hookspec
from racetrack_core.plugins import PluginManager

__version__ = "0.1.0"

__all__ = ["PluginManager", "__version__", "hookimpl", "hookspec"]
