"""Pytest fixtures for testing Racetrack plugins, loaded through the ``pytest11`` entry point.

Installing Racetrack makes these fixtures available to every test suite in the environment:

``racetrack_plugins``
    A fresh :class:`~racetrack_core.PluginManager`, loaded from the installed entry points and
    the current environment variables (so ``RACETRACK_DISABLE_PLUGINS`` applies).
``register_plugin``
    ``register_plugin(plugin, name=None) -> name`` registers a plugin object on that manager
    and unregisters it when the test ends.
``git_server``, ``private_git_server``
    A real git smart-HTTP server on 127.0.0.1 (git's own http-backend), public or behind HTTP
    basic auth, for testing deployments from git (see :mod:`racetrack_core.gitserver`).
``racetrack_server``
    A real ``racetrack up`` (Lifecycle, Pub and the Dashboard in a child process, SQLite in
    ``tmp_path``, free 127.0.0.1 ports), started for each test and stopped after it, running
    the plugins installed in this environment: log in, deploy a job of your job type, call it
    through Pub (see :mod:`racetrack_core.testserver`; override ``racetrack_database_url`` or
    ``racetrack_server_env`` to change its database or settings).

A job-type plugin can then be tested through the same registries the server uses::

    def test_hello_job_type(racetrack_plugins):
        assert racetrack_plugins.job_types.resolve("hello:1.x").version == "1.0.0"

and end to end, deployed and called through a real server::

    def test_my_job_type_end_to_end(racetrack_server):
        racetrack_server.login()
        record = racetrack_server.deploy_folder(Path("tests/my-job"))  # job.yaml and its code
        assert record["status"] == "done", racetrack_server.log()
        assert racetrack_server.call("my-job", "latest", {"number": 7}).status_code == 200

Pytest imports this module in every session, so it imports Racetrack itself only when a
fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

import pytest

pytest_plugins = ["racetrack_core.gitserver", "racetrack_core.testserver"]

if TYPE_CHECKING:
    from racetrack_core.plugins import PluginManager


class RegisterPlugin(Protocol):
    """The ``register_plugin`` fixture: register a plugin for the rest of the test."""

    def __call__(self, plugin: object, name: str | None = None) -> str:
        """Register ``plugin`` (a module, or an object with hook implementations); return its name.

        ``name`` defaults to pluggy's canonical name for the plugin.
        """
        ...


@pytest.fixture
def racetrack_plugins() -> PluginManager:
    """A loaded plugin manager of the installed plugins, new for each test."""
    from racetrack_core.plugins import PluginManager

    return PluginManager().load()


@pytest.fixture
def register_plugin(racetrack_plugins: PluginManager) -> Iterator[RegisterPlugin]:
    """Register plugin objects on ``racetrack_plugins``; each is unregistered after the test."""
    registered: list[str] = []

    def register(plugin: object, name: str | None = None) -> str:
        registered_name = racetrack_plugins.register(plugin, name)
        registered.append(registered_name)
        return registered_name

    yield register
    for name in reversed(registered):
        # A test may have unregistered it already, or RACETRACK_DISABLE_PLUGINS blocked it.
        if racetrack_plugins.get(name) is not None:
            racetrack_plugins.unregister(name)
