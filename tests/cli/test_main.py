"""The top-level group: version, one-line errors, lazy imports and commands from plugins."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections.abc import Callable
from importlib.metadata import version as installed_version
from pathlib import Path

import click
from click.testing import Result

from racetrack_cli import main
from racetrack_cli.local_plugins import LocalPlugins
from racetrack_core import PluginManager, hookimpl, plugins
from racetrack_core.errors import ManifestError, PluginError
from racetrack_core.testing.plugin import RegisterPlugin

RunCli = Callable[..., Result]


class GreetingCommands:
    """A plugin adding one command of its own and one that clashes with a built-in."""

    @hookimpl
    def cli_commands(self, cli: click.Group) -> None:
        @cli.command()
        @click.argument("who")
        def greet(who: str) -> None:
            """Greet someone."""
            click.echo(f"hello {who}")

        @cli.command()
        def validate() -> None:
            """Pretend to be the built-in validate."""
            click.echo("plugin validate")


class ManifestCommands:
    """A plugin whose command fails as Racetrack fails on purpose."""

    @hookimpl
    def cli_commands(self, cli: click.Group) -> None:
        @cli.command()
        def broken() -> None:
            """Fail as Racetrack fails on purpose."""
            raise ManifestError(["field 'a': wrong", "field 'b': wrong too"], source="job.yaml")


class FailingCommands:
    @hookimpl
    def cli_commands(self, cli: click.Group) -> None:
        raise RuntimeError("boom")


class UnloadablePlugins(LocalPlugins):
    """Local plugins whose loading fails, as with a broken third-party plugin."""

    @property
    def manager(self) -> PluginManager:
        raise PluginError(
            "plugin 'broken' (broken:plugin) could not be imported: No module named 'x'"
        )


def test_version_prints_the_installed_version(run_cli: RunCli) -> None:
    result = run_cli("version")
    assert result.exit_code == 0
    assert result.stdout == f"racetrack {installed_version('racetrack-platform')}\n"


def test_version_option_matches_the_version_command(run_cli: RunCli) -> None:
    assert run_cli("--version").stdout == run_cli("version").stdout


def test_built_in_commands_do_not_load_plugins(run_cli: RunCli) -> None:
    manager = PluginManager()
    result = run_cli("version", plugins=LocalPlugins(manager))
    assert result.exit_code == 0
    assert not manager.loaded


def test_an_unknown_command_is_one_line_with_exit_code_2(run_cli: RunCli) -> None:
    result = run_cli("frobnicate")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "Error: No such command 'frobnicate'. (see 'racetrack --help')"
    ]
    assert result.stdout == ""
    typo = run_cli("deplo")
    assert typo.stderr.splitlines() == [
        "Error: No such command 'deplo'. Did you mean 'deploy'? (see 'racetrack --help')"
    ]


def test_an_unknown_option_is_one_line_with_exit_code_2(run_cli: RunCli) -> None:
    result = run_cli("validate", "--bogus")
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert "No such option '--bogus'" in line
    assert "racetrack validate --help" in line


def test_a_plugin_adds_a_command(
    run_cli: RunCli, racetrack_register_plugin: RegisterPlugin
) -> None:
    racetrack_register_plugin(GreetingCommands(), "greetings")
    result = run_cli("greet", "world")
    assert result.exit_code == 0
    assert result.stdout == "hello world\n"


def test_a_plugin_command_clashing_with_a_built_in_is_refused(
    run_cli: RunCli, racetrack_register_plugin: RegisterPlugin
) -> None:
    racetrack_register_plugin(GreetingCommands(), "greetings")
    result = run_cli("--help")
    assert result.exit_code == 0
    assert "greet" in result.stdout
    assert "Pretend to be" not in result.stdout
    assert (
        "Warning: plugin 'greetings' adds a command 'validate', which is a built-in command"
        in result.stderr
    )
    assert "plugin validate" not in run_cli("validate", "--help").stdout


def test_a_racetrack_error_becomes_one_line_per_problem(
    run_cli: RunCli, racetrack_register_plugin: RegisterPlugin
) -> None:
    racetrack_register_plugin(ManifestCommands(), "manifests")
    result = run_cli("broken")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: job.yaml: field 'a': wrong",
        "Error: job.yaml: field 'b': wrong too",
    ]
    assert "Traceback" not in result.output


def test_a_failing_cli_commands_hook_costs_only_its_commands(
    run_cli: RunCli, racetrack_register_plugin: RegisterPlugin
) -> None:
    racetrack_register_plugin(FailingCommands(), "failing")
    racetrack_register_plugin(GreetingCommands(), "greetings")
    result = run_cli("greet", "you")
    assert result.exit_code == 0
    assert result.stdout == "hello you\n"
    assert "plugin 'failing' failed in hook 'cli_commands'" in result.stderr


def test_help_still_works_when_plugins_cannot_load(run_cli: RunCli) -> None:
    result = run_cli("--help", plugins=UnloadablePlugins())
    assert result.exit_code == 0
    assert "validate" in result.stdout
    assert "commands of plugins are unavailable: plugin 'broken'" in result.stderr


def test_a_command_needing_plugins_fails_in_one_line_when_they_cannot_load(
    run_cli: RunCli,
) -> None:
    result = run_cli("plugin", "list", "--local", plugins=UnloadablePlugins())
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: plugin 'broken' (broken:plugin) could not be imported: No module named 'x'"
    ]


def test_starting_imports_no_core_module_and_no_heavy_library() -> None:
    script = (
        "import sys\n"
        "from racetrack_cli.main import cli\n"
        "cli.main(['version'], standalone_mode=False)\n"
        "heavy = {'racetrack_core', 'pluggy', 'jsonschema', 'ruamel', 'uv'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines()[-1] == "[]"


def test_python_dash_m_runs_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "racetrack_cli", "plugin", "list", "--local", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {plugin["name"] for plugin in json.loads(done.stdout)}
    assert {"python3", "golang", "docker-proxy"} <= names


def test_every_place_names_the_distribution_of_pyproject() -> None:
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    name = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["name"]
    assert main.DISTRIBUTION == plugins.OWN_DISTRIBUTION == name
