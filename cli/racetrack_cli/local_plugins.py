"""The plugins of the Python environment the CLI runs in, loaded only when a command needs them.

Every command reaches them through the click context object, so that tests (and programs that
embed the CLI) can hand in a plugin manager of their own:
``cli.main(args, obj=LocalPlugins(manager))``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from racetrack_core.plugins import PluginManager


class LocalPlugins:
    """A plugin manager of this environment's plugins, built and loaded on first use."""

    def __init__(self, manager: PluginManager | None = None) -> None:
        self._manager = manager
        self.commands: dict[str, click.Command] | None = None

    @property
    def manager(self) -> PluginManager:
        """The loaded plugin manager; raise PluginError if a plugin cannot be loaded."""
        if self._manager is None:
            from racetrack_core.plugins import PluginManager

            self._manager = PluginManager()
        return self._manager.load()


def local_plugins(ctx: click.Context) -> LocalPlugins:
    """The LocalPlugins of this invocation, made on first use."""
    return ctx.find_root().ensure_object(LocalPlugins)
