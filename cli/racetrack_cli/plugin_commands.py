"""``racetrack plugin list|install|uninstall``: the plugins of an environment.

With ``--local`` they act on the Python environment the command runs in (in the embedded
default, the server's own). Acting on the server of the current remote comes with the
Lifecycle API.
"""

from __future__ import annotations

from typing import Any

import click

from racetrack_cli.local_plugins import local_plugins
from racetrack_cli.output import cell, print_json, print_table, warn

TABLE_HEADERS = ("NAME", "VERSION", "BUILT-IN", "JOB TYPES", "TARGETS", "HOOKS")

local_option = click.option(
    "--local",
    is_flag=True,
    help="Act on the plugins of this Python environment (the embedded server's own).",
)


def require_local(local: bool, action: str) -> None:
    """Refuse, for now, to act on a server: that side arrives with the Lifecycle API."""
    if not local:
        raise click.ClickException(
            f"{action} the plugins of a Racetrack server arrives with the Lifecycle API; "
            "for now, use --local for the plugins of this Python environment"
        )


@click.group()
def plugin() -> None:
    """List, install and uninstall plugins.

    Plugins provide job types, infrastructure targets, manifest checks and more.
    """


@plugin.command("list")
@local_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.pass_context
def list_plugins(ctx: click.Context, local: bool, as_json: bool) -> None:
    """List the plugins with their versions, job types, infrastructure targets and hooks."""
    require_local(local, "listing")
    infos = local_plugins(ctx).manager.describe()
    if as_json:
        print_json([info.as_dict() for info in infos])
        return
    rows = [
        (
            info.name,
            cell(info.version),
            "yes" if info.builtin else "no",
            cell(info.job_types),
            cell(info.infrastructure_targets),
            cell(info.hooks),
        )
        for info in infos
    ]
    print_table(TABLE_HEADERS, rows)


@plugin.command()
@click.argument("spec")
@local_option
def install(spec: str, local: bool) -> None:
    """Install a plugin: SPEC is its directory, a wheel, or a requirement.

    The install is checked by loading every plugin afresh; if that fails, it is undone.
    """
    require_local(local, "installing")
    from racetrack_cli import installer

    report = installer.install(spec)
    if not report.distributions:
        warn(f"'{spec}' is installed already: nothing changed")
    elif not report.plugins:
        warn(
            f"'{spec}' was installed, but it provides no Racetrack plugin "
            f"(no entry point in the group '{installer.ENTRY_POINT_GROUP}')"
        )
    for name, version in sorted(report.distributions.items()):
        click.echo(f"installed {name} {version}")
    for info in report.plugins:
        click.echo(_describe(info))


@plugin.command()
@click.argument("name")
@local_option
def uninstall(name: str, local: bool) -> None:
    """Uninstall a plugin: NAME is the plugin's name or its distribution's.

    Built-in plugins cannot be uninstalled; RACETRACK_DISABLE_PLUGINS turns them off.
    """
    require_local(local, "uninstalling")
    from racetrack_cli import installer

    dist, plugin_names = installer.uninstall(name)
    names = ", ".join(plugin_names)
    click.echo(f"uninstalled {dist} (plugin{'s' if len(plugin_names) != 1 else ''} {names})")


def _describe(info: dict[str, Any]) -> str:
    parts = [f"plugin {info['name']} {info.get('version') or ''}".rstrip()]
    if info.get("job_types"):
        parts.append(f"job types {', '.join(info['job_types'])}")
    if info.get("infrastructure_targets"):
        parts.append(f"targets {', '.join(info['infrastructure_targets'])}")
    return ": ".join(parts[:1]) + (": " + "; ".join(parts[1:]) if parts[1:] else "")
