"""The plugin manager: finds plugins through entry points, loads them once, and calls them.

Plugins are found through the ``racetrack.plugins`` entry-point group; Racetrack's own job
types and infrastructure targets are declared there too. Two environment variables steer
loading: ``RACETRACK_DISABLE_PLUGINS=a,b`` blocks plugins by name, and
``RACETRACK_TRACE_PLUGINS=1`` logs every hook call (names and timings, never argument values).
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import importlib_metadata
import pluggy

from racetrack_core import hookspecs
from racetrack_core.errors import PluginError
from racetrack_core.hookcalls import refuse_unwrappable, wrap_errors, wrapper_refusal
from racetrack_core.registry import InfrastructureRegistry, JobTypeRegistry

ENTRY_POINT_GROUP = "racetrack.plugins"
OWN_DISTRIBUTION = "racetrack-platform"  # the distribution holding the core and built-ins

log = logging.getLogger("racetrack.plugins")


@dataclass(frozen=True)
class PluginInfo:
    """What ``racetrack plugin list`` shows about one plugin."""

    name: str
    version: str | None
    distribution: str | None
    builtin: bool
    hooks: list[str]
    job_types: list[str] = field(default_factory=list)
    infrastructure_targets: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Origin:
    distribution: str | None
    version: str | None


class PluginManager:
    """Racetrack's plugin manager: a pluggy manager plus the registries built from its plugins.

    ``load()`` discovers entry-point plugins and checks every hook implementation; it runs once.
    Plugins may also be registered in code with ``register()`` (before or after loading), which
    is how a platform that embeds Racetrack adds its own.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._origins: dict[str, _Origin] = {}
        self._loaded = False
        self._job_types: JobTypeRegistry | None = None
        self._targets: InfrastructureRegistry | None = None
        self.disabled = frozenset(
            name.strip()
            for name in env.get("RACETRACK_DISABLE_PLUGINS", "").split(",")
            if name.strip()
        )
        for name in self.disabled:
            self._pm.set_blocked(name)
        self._tracer: _Tracer | None = None
        if env.get("RACETRACK_TRACE_PLUGINS", "").lower() in {"1", "true", "yes", "on"}:
            self._tracer = _Tracer()
            self._pm.add_hookcall_monitoring(self._tracer.before, self._tracer.after)

    @property
    def hook(self) -> Any:
        """The hook relay: ``manager.hook.<name>(**kwargs)`` calls every implementation."""
        return self._pm.hook

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> PluginManager:
        """Discover and register the entry-point plugins, then check every hook implementation.

        Runs once: later calls return at once. Raise PluginError naming the plugin that failed.
        """
        if self._loaded:
            return self
        before = set(self._origins)
        try:
            self._load_entry_points()
            self.check()
        except PluginError:
            for name in set(self._origins) - before:
                self.unregister(name)
            raise
        self._loaded = True
        return self

    def load_new(self) -> list[str]:
        """Register the entry-point plugins installed since ``load`` (by ``plugin install``),
        so that a running server uses them without a restart; return their names.

        A new plugin that fails to load is unregistered again and reported as PluginError.
        """
        importlib.invalidate_caches()
        before = set(self._origins)
        try:
            self._load_entry_points(skip=before)
            self.check()
        except PluginError:
            for name in set(self._origins) - before:
                self.unregister(name)
            raise
        return sorted(set(self._origins) - before)

    def reload(self, names: Collection[str]) -> list[str]:
        """Unregister the plugins ``names`` and forget their modules (an upgrade or uninstall
        changed them), then register the entry-point plugins now installed that are not
        registered; return the names registered.

        Built-in plugins' modules are kept: only third-party packages are imported afresh.
        """
        for name in names:
            plugin = self._pm.get_plugin(name)
            if plugin is None:
                continue
            self.unregister(name)
            module = getattr(plugin, "__name__", None) or type(plugin).__module__
            top = str(module).split(".")[0]
            if top in {"racetrack_core", "racetrack_plugins", "racetrack_cli"}:
                continue
            for loaded in [m for m in sys.modules if m == top or m.startswith(f"{top}.")]:
                del sys.modules[loaded]
        return self.load_new()

    def _load_entry_points(self, skip: set[str] | None = None) -> None:
        seen: set[str] = set()
        for entry_point in importlib_metadata.entry_points(group=ENTRY_POINT_GROUP):
            name = entry_point.name
            if name in seen:
                raise PluginError(
                    f"two installed distributions declare a plugin named '{name}': uninstall one"
                )
            seen.add(name)
            if skip and name in skip:
                continue
            if self._pm.is_blocked(name):
                log.info("plugin %s is disabled by RACETRACK_DISABLE_PLUGINS", name)
                continue
            try:
                plugin = entry_point.load()
            except Exception as exc:
                raise PluginError(
                    f"plugin '{name}' ({entry_point.value}) could not be imported: {exc}"
                ) from exc
            dist = entry_point.dist
            origin = _Origin(dist.name if dist else None, dist.version if dist else None)
            self.register(plugin, name, _origin=origin)
        unknown = self.disabled - seen - set(self._origins)
        for name in sorted(unknown):
            log.warning(
                "RACETRACK_DISABLE_PLUGINS names '%s', which is not an installed plugin", name
            )

    def register(
        self, plugin: object, name: str | None = None, *, _origin: _Origin | None = None
    ) -> str:
        """Register a plugin object (a module or an instance with hook implementations).

        Returns its name. Registries built earlier are rebuilt on next use.
        """
        name = name or self._pm.get_canonical_name(plugin)
        if self._pm.is_blocked(name):
            log.info("plugin %s is disabled by RACETRACK_DISABLE_PLUGINS", name)
            return name
        try:
            registered = self._pm.register(plugin, name)
        except ValueError as exc:
            raise PluginError(f"plugin '{name}' could not be registered: {exc}") from exc
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin '{name}' is not a valid Racetrack plugin: {exc}") from exc
        if registered is None:
            return name
        try:
            refuse_unwrappable(self._pm, plugin, name)
        except PluginError:
            self._pm.unregister(name=name)
            raise
        self._origins[name] = _origin or _Origin(None, None)
        wrap_errors(self._pm, plugin, name)
        self._forget_registries()
        if self._loaded:
            try:
                self.check()
            except PluginError:
                self.unregister(name)
                raise
        return name

    def unregister(self, name: str) -> None:
        """Remove a plugin by name (tests and embedding platforms use this)."""
        self._pm.unregister(name=name)
        self._origins.pop(name, None)
        self._forget_registries()

    def check(self) -> None:
        """Raise PluginError if a plugin implements a hook that does not exist."""
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            plugin_name = self._pm.get_name(exc.plugin) or repr(exc.plugin)
            raise PluginError(
                f"plugin '{plugin_name}' implements an unknown hook: {exc}. "
                "See docs/plugins.md for the hooks Racetrack offers"
            ) from exc

    def names(self) -> list[str]:
        """Names of the registered plugins, sorted."""
        return sorted(self._origins)

    def get(self, name: str) -> object | None:
        return self._pm.get_plugin(name)

    # -------------------------------------------------------------- registries

    @property
    def job_types(self) -> JobTypeRegistry:
        """The job types every plugin registered (built on first use)."""
        if self._job_types is None:
            registry = JobTypeRegistry()
            self._call_each(
                "register_job_types", lambda plugin: {"registry": registry.registrar(plugin)}
            )
            self._job_types = registry
        return self._job_types

    @property
    def infrastructure_targets(self) -> InfrastructureRegistry:
        """The infrastructure targets every plugin registered (built on first use)."""
        if self._targets is None:
            registry = InfrastructureRegistry()
            self._call_each(
                "register_infrastructure_targets",
                lambda plugin: {"registry": registry.registrar(plugin)},
            )
            self._targets = registry
        return self._targets

    def describe(self) -> list[PluginInfo]:
        """One PluginInfo per registered plugin, sorted by name."""
        job_types = self.job_types
        targets = self.infrastructure_targets
        infos = []
        for name in self.names():
            plugin = self._pm.get_plugin(name)
            origin = self._origins[name]
            hooks = sorted(caller.name for caller in self._pm.get_hookcallers(plugin) or [])
            infos.append(
                PluginInfo(
                    name=name,
                    version=origin.version,
                    distribution=origin.distribution,
                    builtin=origin.distribution == OWN_DISTRIBUTION,
                    hooks=hooks,
                    job_types=[t.ref for t in job_types if t.plugin == name],
                    infrastructure_targets=[t.name for t in targets if t.plugin == name],
                )
            )
        return infos

    def implementations(self, hook_name: str) -> list[tuple[str, Callable[..., Any]]]:
        """Each implementation of one hook as ``(plugin name, function)``, in call order.

        The function takes keyword arguments and passes on only those the implementation
        accepts, as pluggy does. Use this when each plugin's answer must be told apart.
        """
        caller = getattr(self._pm.hook, hook_name)
        found: list[tuple[str, Callable[..., Any]]] = []
        for impl in reversed(caller.get_hookimpls()):
            if impl.hookwrapper or impl.wrapper:
                raise PluginError(wrapper_refusal(impl.plugin_name, hook_name))
            found.append(
                (impl.plugin_name, functools.partial(_call_impl, impl, hook_name, self._tracer))
            )
        return found

    def _call_each(self, hook_name: str, kwargs_for: Callable[[str], dict[str, Any]]) -> None:
        """Call one hook plugin by plugin, giving each its own arguments."""
        for plugin_name, call in self.implementations(hook_name):
            call(**kwargs_for(plugin_name))

    def _forget_registries(self) -> None:
        self._job_types = None
        self._targets = None


def _call_impl(impl: Any, hook_name: str, tracer: _Tracer | None, **kwargs: Any) -> Any:
    arguments = {arg: kwargs[arg] for arg in impl.argnames}
    if tracer is None:
        return impl.function(**arguments)
    tracer.before(hook_name, [impl], arguments)
    try:
        result = impl.function(**arguments)
    except BaseException:
        tracer.finish(hook_name, failed=True)
        raise
    tracer.finish(hook_name, failed=False)
    return result


class _Tracer:
    """Logs each hook call with the plugins it reaches and its duration, never argument values."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _starts(self) -> list[float]:
        if not hasattr(self._local, "starts"):
            self._local.starts = []
        starts: list[float] = self._local.starts
        return starts

    def before(self, hook_name: str, hook_impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        plugins = ", ".join(impl.plugin_name for impl in hook_impls) or "no plugin"
        log.info("hook %s(%s) -> %s", hook_name, ", ".join(kwargs), plugins)
        self._starts().append(time.perf_counter())

    def after(
        self, outcome: Any, hook_name: str, hook_impls: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> None:
        self.finish(hook_name, failed=outcome.exception is not None)

    def finish(self, hook_name: str, *, failed: bool) -> None:
        starts = self._starts()
        elapsed_ms = (time.perf_counter() - starts.pop()) * 1000 if starts else 0.0
        log.info("hook %s %s in %.2f ms", hook_name, "failed" if failed else "done", elapsed_ms)
