"""The ``racetrack`` command: its top-level group, and how every error reaches the user.

A user error is one line on stderr with no traceback: exit 2 for a usage error, 3 for a
deployment that the server ran and that failed, 1 for any other (a
:class:`racetrack_core.errors.RacetrackError` included). Modules of Racetrack's core, and
the libraries they need, are imported inside the commands that use them, so that the command
line starts fast; plugins are loaded only for a command name that is not built in, or for the
command list of ``racetrack --help``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from racetrack_cli.account_commands import login, logout
from racetrack_cli.admin_commands import COMMANDS as ADMIN_COMMANDS
from racetrack_cli.deploy_commands import deploy
from racetrack_cli.extensions import plugin_commands
from racetrack_cli.grant_commands import COMMANDS as GRANT_COMMANDS
from racetrack_cli.image_commands import images
from racetrack_cli.job_commands import build_logs, call, delete, list_jobs, logs, move
from racetrack_cli.manifest_commands import validate
from racetrack_cli.output import error
from racetrack_cli.plugin_commands import plugin
from racetrack_cli.remote_commands import get_group, set_group
from racetrack_cli.server_commands import serve, up

# The distribution's name on the package index; the command and import packages are racetrack*.
DISTRIBUTION = "racetrack-platform"


class RacetrackGroup(click.Group):
    """A group that adds the commands of plugins, and reports errors as one line each."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            command = plugin_commands(ctx, self.commands).get(cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *plugin_commands(ctx, self.commands)})

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        extra["windows_expand_args"] = windows_expand_args
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            error(_one_line(exc.format_message()) + hint)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            error(_one_line(exc.format_message()))
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
        except Exception as exc:
            if not is_racetrack_error(exc):
                raise
            for line in error_lines(exc):
                error(line)
            sys.exit(1)
        # Without standalone mode click returns the code of an explicit ctx.exit(code).
        sys.exit(result if isinstance(result, int) else 0)


def is_racetrack_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a RacetrackError, without importing Racetrack's core to find out."""
    errors = sys.modules.get("racetrack_core.errors")
    return errors is not None and isinstance(exc, errors.RacetrackError)


def error_lines(exc: BaseException) -> list[str]:
    """A RacetrackError as lines for a person: one per manifest problem, else one in all."""
    problems = getattr(exc, "problems", None)
    if isinstance(problems, list) and len(problems) > 1:
        source = getattr(exc, "source", None) or "manifest"
        return [f"{source}: {problem}" for problem in problems]
    return [_one_line(str(exc))]


def _one_line(message: str) -> str:
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


@click.group(cls=RacetrackGroup)
@click.version_option(
    package_name=DISTRIBUTION, prog_name="racetrack", message="%(prog)s %(version)s"
)
def cli() -> None:
    """Racetrack: turn a small piece of code and a job.yaml into an HTTP service.

    Plugins may add commands of their own; they are listed below with the built-in ones.
    """


@cli.command()
def version() -> None:
    """Print the version of Racetrack."""
    from importlib.metadata import version as installed_version

    click.echo(f"racetrack {installed_version(DISTRIBUTION)}")


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL.

    Load it from your shell's start-up file, for bash: eval "$(racetrack completion bash)".
    """
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    assert completer is not None
    click.echo(completer(cli, {}, "racetrack", "_RACETRACK_COMPLETE").source())


for command in (
    set_group,
    get_group,
    login,
    logout,
    deploy,
    validate,
    list_jobs,
    logs,
    build_logs,
    delete,
    move,
    call,
    plugin,
    images,
    up,
    serve,
    *ADMIN_COMMANDS,
    *GRANT_COMMANDS,
):
    cli.add_command(command)


def main() -> None:
    """Run the ``racetrack`` command (the console script's entry point)."""
    cli.main(prog_name="racetrack")
