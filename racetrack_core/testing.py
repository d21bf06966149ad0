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

A job-type plugin can then be tested through the same registries the server uses::

    def test_hello_job_type(racetrack_plugins):
        assert racetrack_plugins.job_types.resolve("hello:1.x").version == "1.0.0"

Pytest imports this module in every session, so it imports Racetrack itself only when a
fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

import pytest

pytest_plugins = ["racetrack_core.gitserver"]

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
