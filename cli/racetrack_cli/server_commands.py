"""``racetrack up`` and ``racetrack serve``: run the Racetrack server on this machine.

These commands import the server (``racetrack_core``) only when they run, so that the rest of
the command line stays fast and free of server modules.
"""

from __future__ import annotations

import logging
from typing import Any

import click

HOME_HELP = (
    "Server folder: database, job files, admin password "
    "[env RACETRACK_HOME; default ~/.racetrack/server]."
)


def _server_options(func: Any) -> Any:
    options = [
        click.option("--home", type=click.Path(file_okay=False), help=HOME_HELP),
        click.option(
            "--db",
            "database_url",
            metavar="URL",
            help="Database URL: sqlite:///file.db or postgresql://user:pass@host/db "
            "[env RACETRACK_DATABASE_URL; default a SQLite file in the home folder].",
        ),
        click.option(
            "--infra",
            "infrastructure_target",
            metavar="NAME",
            help="Infrastructure target for new jobs [default local].",
        ),
        click.option("--host", help="Address to listen on [default 127.0.0.1]."),
        click.option("--lifecycle-port", type=int, help="Lifecycle API port [default 7102]."),
        click.option("--dashboard-port", type=int, help="Dashboard port [default 7103]."),
        click.option("--pub-port", type=int, help="Pub gateway port [default 7105]."),
        click.option("-v", "--verbose", is_flag=True, help="Log what the server does."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _start(names: tuple[str, ...], verbose: bool, overrides: dict[str, Any]) -> None:
    from racetrack_core import PluginManager, server
    from racetrack_core.settings import Settings

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = Settings.load(overrides)
    plugins = PluginManager()
    plugins.load()
    if "lifecycle" in names:
        names_installed = plugins.infrastructure_targets.names()
        if settings.infrastructure_target not in names_installed:
            raise click.BadParameter(
                f"unknown infrastructure target '{settings.infrastructure_target}'. "
                f"Installed: {', '.join(names_installed) or 'none'}",
                param_hint="'--infra'",
            )
        settings = server.prepare(settings, lambda line: click.echo(line, err=True))
    services = server.build_services(settings, plugins, names)
    click.echo(f"Racetrack home: {settings.home}", err=True)
    server.run(settings, services, lambda line: click.echo(line, err=True))


@click.command()
@_server_options
def up(verbose: bool, **overrides: Any) -> None:
    """Start Lifecycle, Pub and the Dashboard here, in the foreground (Ctrl-C stops them)."""
    _start(("lifecycle", "pub", "dashboard"), verbose, overrides)


@click.command()
@click.argument("service", type=click.Choice(["lifecycle", "pub", "dashboard"]))
@_server_options
def serve(service: str, verbose: bool, **overrides: Any) -> None:
    """Run one service on its own (several replicas may run behind a load balancer)."""
    _start((service,), verbose, overrides)
