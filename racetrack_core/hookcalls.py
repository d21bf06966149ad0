"""How the plugin manager wraps each hook implementation it registers.

A failure in a hook is re-raised as :class:`~racetrack_core.errors.PluginError` naming the
plugin and the hook (the original stays as ``__cause__``). Hook wrappers
(``@hookimpl(wrapper=True)``, or pluggy's older ``hookwrapper=True``) are supported on the
hooks that Racetrack calls as one hook call, and refused, naming the plugin and the hook, on
the hooks it calls plugin by plugin, where they would never run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pluggy

from racetrack_core.errors import AuthenticationError, PluginError, RacetrackError

WRAPPABLE_HOOKS = frozenset({"authenticate_request"})
"""The hooks that Racetrack calls as one hook call (``manager.hook.<name>(...)``), around which
a plugin may put a wrapper (``@hookimpl(wrapper=True)`` or ``hookwrapper=True``). Every other
hook is called plugin by plugin (:meth:`PluginManager.implementations`), where a wrapper would
never run, so a plugin that wraps one is refused when it is registered."""


def refuse_unwrappable(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    """Raise PluginError if ``plugin`` wraps a hook that Racetrack calls plugin by plugin."""
    for caller in pm.get_hookcallers(plugin) or []:
        for impl in caller.get_hookimpls():
            is_wrapper = impl.hookwrapper or impl.wrapper
            if impl.plugin is plugin and is_wrapper and caller.name not in WRAPPABLE_HOOKS:
                raise PluginError(wrapper_refusal(name, caller.name))


def wrapper_refusal(plugin: str, hook: str) -> str:
    wrappable = ", ".join(sorted(WRAPPABLE_HOOKS))
    return (
        f"plugin '{plugin}' implements hook '{hook}' as a wrapper, but Racetrack calls that "
        f"hook plugin by plugin, where a wrapper would never run: make it a plain @hookimpl "
        f"(wrappers are supported only on {wrappable})"
    )


def wrap_errors(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    """Make each hook implementation of ``plugin`` re-raise failures naming plugin and hook."""
    for caller in pm.get_hookcallers(plugin) or []:
        for impl in caller.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            wrap = _named_wrapper_failures if impl.hookwrapper or impl.wrapper else _named_failures
            # HookImpl.function is declared Final, but pluggy reads it on every call.
            setattr(impl, "function", wrap(impl.function, name, caller.name))  # noqa: B010


def _named_failures(function: Callable[..., Any], plugin: str, hook: str) -> Callable[..., Any]:
    """Wrap a hook implementation so that any failure becomes a PluginError naming its source.

    The original exception stays available as ``__cause__``.
    """

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except Exception as exc:
            named = _named(exc, plugin, hook)
            if named is exc:
                raise
            raise named from exc

    return call


def _named_wrapper_failures(
    function: Callable[..., Any], plugin: str, hook: str
) -> Callable[..., Any]:
    """Wrap a hook wrapper (a generator) so that its own failures name plugin and hook.

    What the wrapped implementations raise is thrown into the wrapper; if the wrapper lets it
    through unchanged, it passes on as it is (it names its own plugin already).
    """

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        steps = function(*args, **kwargs)
        thrown: BaseException | None = None
        try:
            step = next(steps)
            while True:
                thrown = None
                try:
                    sent = yield step
                except BaseException as exc:
                    thrown = exc
                    step = steps.throw(exc)
                else:
                    step = steps.send(sent)
        except StopIteration as stop:
            return stop.value
        except Exception as exc:
            named = exc if exc is thrown else _named(exc, plugin, hook)
            if named is exc:
                raise
            raise named from exc

    return call


def _named(exc: Exception, plugin: str, hook: str) -> Exception:
    """The error to raise for ``exc`` from a hook of ``plugin``: one that names its source."""
    if isinstance(exc, AuthenticationError):
        # A deliberate refusal of the request, not a failure of the plugin: keep its type.
        if f"plugin '{plugin}'" in str(exc):
            return exc
        return AuthenticationError(f"plugin '{plugin}' refused the request: {exc}")
    if isinstance(exc, PluginError) and f"plugin '{plugin}'" in str(exc):
        return exc
    if isinstance(exc, RacetrackError):
        return PluginError(f"plugin '{plugin}' failed in hook '{hook}': {exc}")
    return PluginError(f"plugin '{plugin}' failed in hook '{hook}': {type(exc).__name__}: {exc}")
