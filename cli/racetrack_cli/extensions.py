"""Commands that plugins add to ``racetrack`` through the ``cli_commands`` hook.

Collecting them means loading every plugin, so the top-level group does it only when it meets a
command name that is not built in, or lists its commands for ``--help``.
"""

from __future__ import annotations

from collections.abc import Collection

import click

from racetrack_cli.local_plugins import local_plugins
from racetrack_cli.output import warn


def plugin_commands(ctx: click.Context, builtin: Collection[str]) -> dict[str, click.Command]:
    """The commands plugins add, by name, collected once per invocation.

    A command whose name is built in, or that an earlier plugin added, is left out with a
    warning naming the plugin. A plugin that cannot be loaded costs its commands and a warning,
    never the built-in commands.
    """
    plugins = local_plugins(ctx)
    if plugins.commands is None:
        plugins.commands = _collect(ctx, builtin)
    return plugins.commands


def _collect(ctx: click.Context, builtin: Collection[str]) -> dict[str, click.Command]:
    from racetrack_core.errors import RacetrackError

    try:
        manager = local_plugins(ctx).manager
    except RacetrackError as exc:
        warn(f"commands of plugins are unavailable: {exc}")
        return {}
    commands: dict[str, click.Command] = {}
    owners: dict[str, str] = {}
    for plugin, add_commands in manager.implementations("cli_commands"):
        # Each plugin adds to a group of its own, so that its commands can be told apart.
        collector = click.Group(name=ctx.info_name)
        try:
            add_commands(cli=collector)
        except RacetrackError as exc:
            warn(f"{exc}; its commands are left out")
            continue
        for name, command in collector.commands.items():
            if name in builtin:
                warn(
                    f"plugin '{plugin}' adds a command '{name}', which is a built-in command: "
                    "ignored; rename the plugin's command"
                )
            elif name in owners:
                warn(
                    f"plugin '{plugin}' adds a command '{name}', which plugin '{owners[name]}' "
                    "added already: ignored"
                )
            else:
                commands[name] = command
                owners[name] = plugin
    return commands
