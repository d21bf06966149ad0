"""Racetrack's pytest plugin, loaded through the ``pytest11`` entry point.

Every fixture's name starts with ``racetrack_``, so that installing Racetrack adds nothing that
could clash with another project's own fixtures (and none is named like a Racetrack package:
the plugin manager fixture is ``racetrack_plugin_manager``, not ``racetrack_plugins``, the
built-in plugins' package):

``racetrack_plugin_manager``
    A fresh :class:`~racetrack_core.PluginManager`, loaded from the installed entry points and
    the current environment variables (so ``RACETRACK_DISABLE_PLUGINS`` applies).
``racetrack_register_plugin``
    ``racetrack_register_plugin(plugin, name=None) -> name`` registers a plugin object on that
    manager and unregisters it when the test ends.
``racetrack_git_server``, ``racetrack_private_git_server``
    A real git smart-HTTP server on 127.0.0.1 (git's own http-backend), public or behind HTTP
    Basic auth (``.username`` and a random ``.password``), for testing deployments from git
    (see :mod:`racetrack_core.testing.gitserver`). The test is skipped when git is missing.
``racetrack_server``
    A real ``racetrack up`` (Lifecycle, Pub and the Dashboard in a child process, SQLite in
    ``tmp_path``, free 127.0.0.1 ports), started for each test and stopped after it, running
    the plugins installed in this environment: log in, deploy a job of your job type, call it
    through Pub (see :mod:`racetrack_core.testing.server`). Override
    ``racetrack_database_url`` or ``racetrack_server_env`` to change its database or settings,
    and ``racetrack_server_python`` to run it in another Python environment.

A job-type plugin can then be tested through the same registries the server uses::

    def test_hello_job_type(racetrack_plugin_manager):
        assert racetrack_plugin_manager.job_types.resolve("hello:1.x").version == "1.0.0"

and end to end, deployed and called through a real server::

    def test_my_job_type_end_to_end(racetrack_server):
        racetrack_server.login()
        record = racetrack_server.deploy_folder(Path("tests/my-job"))  # job.yaml and its code
        assert record["status"] == "done", racetrack_server.log()
        assert racetrack_server.call("my-job", "latest", {"number": 7}).status_code == 200

Pytest imports this module in every session of an environment where Racetrack is installed,
so it imports the rest of Racetrack only when a fixture is used. This subpackage is the only
place in Racetrack that imports pytest.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pytest

if TYPE_CHECKING:
    from racetrack_core.plugins import PluginManager
    from racetrack_core.testing.gitserver import GitServer
    from racetrack_core.testing.server import RacetrackServer


class RegisterPlugin(Protocol):
    """The ``racetrack_register_plugin`` fixture: register a plugin for the rest of the test."""

    def __call__(self, plugin: object, name: str | None = None) -> str:
        """Register ``plugin`` (a module, or an object with hook implementations); return its name.

        ``name`` defaults to pluggy's canonical name for the plugin.
        """
        ...


# -- plugins -------------------------------------------------------------------------------------


@pytest.fixture
def racetrack_plugin_manager() -> PluginManager:
    """A loaded plugin manager of the installed plugins, new for each test."""
    from racetrack_core.plugins import PluginManager

    return PluginManager().load()


@pytest.fixture
def racetrack_register_plugin(racetrack_plugin_manager: PluginManager) -> Iterator[RegisterPlugin]:
    """Register plugin objects on ``racetrack_plugin_manager``; each is unregistered afterwards."""
    registered: list[str] = []

    def register(plugin: object, name: str | None = None) -> str:
        registered_name = racetrack_plugin_manager.register(plugin, name)
        registered.append(registered_name)
        return registered_name

    yield register
    for name in reversed(registered):
        # A test may have unregistered it already, or RACETRACK_DISABLE_PLUGINS blocked it.
        if racetrack_plugin_manager.get(name) is not None:
            racetrack_plugin_manager.unregister(name)


# -- git servers ---------------------------------------------------------------------------------


def _require_git() -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")


@pytest.fixture
def racetrack_git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    """A public git smart-HTTP server on 127.0.0.1, empty, new for each test."""
    from racetrack_core.testing.gitserver import GitServer

    _require_git()
    with GitServer(tmp_path_factory.mktemp("git-server")) as server:
        yield server


@pytest.fixture
def racetrack_private_git_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GitServer]:
    """A git server that needs HTTP Basic auth: ``.username`` and a random ``.password``."""
    from racetrack_core.testing.gitserver import GitServer

    _require_git()
    password = secrets.token_urlsafe(18)
    root = tmp_path_factory.mktemp("private-git-server")
    with GitServer(root, username="racetrack-tester", password=password) as server:
        yield server


# -- a running Racetrack -------------------------------------------------------------------------


@pytest.fixture
def racetrack_database_url(tmp_path: Path) -> str:
    """The database of ``racetrack_server``: a SQLite file in ``tmp_path``."""
    return f"sqlite:///{tmp_path / 'racetrack.db'}"


@pytest.fixture
def racetrack_server_env() -> Mapping[str, str]:
    """Extra environment variables of ``racetrack_server``: its ``QUICK_ENV``, and 127.0.0.1
    allowed as a source host so that it deploys from ``racetrack_git_server``."""
    from racetrack_core.testing.gitserver import ALLOW_LOOPBACK_SOURCES
    from racetrack_core.testing.server import QUICK_ENV

    return {**QUICK_ENV, **ALLOW_LOOPBACK_SOURCES}


@pytest.fixture
def racetrack_server_python() -> str | None:
    """The Python that runs ``racetrack_server`` (None: this one). Override it with another
    environment's to install plugins on the server without changing the tests' own."""
    return None


@pytest.fixture
def racetrack_server(
    tmp_path: Path,
    racetrack_database_url: str,
    racetrack_server_env: Mapping[str, str],
    racetrack_server_python: str | None,
) -> Iterator[RacetrackServer]:
    """A started ``racetrack up`` with its home in ``tmp_path``; stopped after the test."""
    from racetrack_core.testing.server import RacetrackServer

    server = RacetrackServer(
        tmp_path / "racetrack-home",
        racetrack_database_url,
        env=racetrack_server_env,
        python=racetrack_server_python,
    )
    with server:
        yield server
