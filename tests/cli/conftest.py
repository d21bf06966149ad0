"""Fixtures for the command-line tests: run ``racetrack`` in-process on a given plugin manager."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from racetrack_cli.local_plugins import LocalPlugins
from racetrack_cli.main import cli
from racetrack_core.plugins import PluginManager

RunCli = Callable[..., Result]

VALID_MANIFEST = """\
name: adder
owner_email: someone@example.com
jobtype: python3:latest
git:
  remote: https://github.com/example/adder
jobtype_extra:
  entrypoint_path: adder.py
"""


@pytest.fixture
def run_cli(racetrack_plugin_manager: PluginManager) -> RunCli:
    """``run_cli(*args)`` runs ``racetrack ARGS`` on the ``racetrack_plugin_manager`` manager."""

    def run(*args: str, plugins: LocalPlugins | None = None, input: str | None = None) -> Result:
        return CliRunner().invoke(
            cli,
            list(args),
            prog_name="racetrack",
            catch_exceptions=False,
            obj=plugins or LocalPlugins(racetrack_plugin_manager),
            input=input,
        )

    return run


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    """A job directory whose job.yaml is valid."""
    directory = tmp_path / "adder"
    directory.mkdir()
    (directory / "job.yaml").write_text(VALID_MANIFEST, encoding="utf-8")
    return directory


@pytest.fixture(autouse=True)
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every command-line test keeps its client configuration in a folder of its own (and
    HOME points elsewhere too), so that no test reads or writes the user's ~/.racetrack."""
    folder = tmp_path / "racetrack-config"
    monkeypatch.setenv("RACETRACK_CONFIG_DIR", str(folder))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return folder
