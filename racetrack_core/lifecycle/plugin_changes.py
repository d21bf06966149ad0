"""Installing, upgrading and uninstalling plugins on a running Lifecycle, and recording them.

An install (an uploaded wheel, a requirement from the server's package index, or a git URL)
runs uv with Racetrack's own packages as constraints; the plugins are then loaded afresh, and
the install undone when they fail to load or when it would drop a job type version that jobs
use (unless forced). The running plugin manager then loads the new or upgraded plugins, so no
restart is needed, and the database records the install for the other replicas. One change
runs at a time.
"""

from __future__ import annotations

import contextlib
import os
import sys
import sysconfig
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session

from racetrack_core import plugin_install, plugin_sources
from racetrack_core.lifecycle import audit, plugin_records
from racetrack_core.lifecycle.audit import EventKind
from racetrack_core.lifecycle.service import LifecycleService
from racetrack_core.plugin_install import InstallError
from racetrack_core.plugin_sources import PluginSource, normalize
from racetrack_core.storage.models import InstalledPlugin

#: One install or uninstall at a time: uv and the plugin manager are not shared safely.
changing = threading.Lock()


class InUseError(InstallError):
    """A change that would leave jobs without their job type; ``--force`` makes it anyway."""


@dataclass
class Change:
    """What an install or uninstall did: the plugins it added or upgraded (descriptions), the
    distributions, and the jobs it left without their job type (forced)."""

    plugins: list[dict[str, Any]] = field(default_factory=list)
    distributions: dict[str, str] = field(default_factory=dict)
    jobs_stopped: list[str] = field(default_factory=list)


@contextlib.contextmanager
def uv_options(service: LifecycleService, source: PluginSource | None) -> Iterator[list[str]]:
    """uv's options for an install: Racetrack's pins as constraints, the server's index, and
    (for a requirement) leave to upgrade the plugin it names."""
    settings = service.settings
    with tempfile.TemporaryDirectory(prefix="racetrack-constraints-") as folder:
        pins = plugin_sources.racetrack_pins()
        options = ["-c", str(plugin_sources.write_constraints(pins, Path(folder)))]
        if settings.plugin_index_url:
            options += ["--index-url", settings.plugin_index_url]
        if source is not None and source.name:
            options += ["--upgrade-package", source.name]
        yield options


def install(
    service: LifecycleService,
    actor: str,
    *,
    source: PluginSource | None = None,
    wheel: tuple[str, bytes] | None = None,
    force: bool = False,
) -> Change:
    """Install from ``source`` or an uploaded ``wheel`` (file name, content); see the module.

    Raise InUseError for a refused upgrade, InstallError for any other failure.
    """
    _check_writable_environment()
    if source is not None:
        plugin_sources.check_hosts(
            source, service.settings.plugin_index_url, service.settings.source_allowed_hosts
        )
    change = Change()
    with changing, uv_options(service, source) as options:
        before = {job_type.ref for job_type in service.plugins.job_types}

        def check(plugins: list[dict[str, Any]]) -> None:
            after = {ref for plugin in plugins for ref in plugin.get("job_types") or []}
            change.jobs_stopped = _jobs_using(service, before - after)
            if change.jobs_stopped and not force:
                raise InUseError(
                    "it drops job type versions that deployed jobs use: "
                    f"{'; '.join(change.jobs_stopped)}. Move those jobs to a version the new "
                    "release keeps, or install with --force, and those jobs stop working",
                    refusal=True,
                )

        with tempfile.TemporaryDirectory(prefix="racetrack-plugin-") as folder:
            spec = source.spec if source is not None else _write_wheel(wheel, Path(folder))
            shown = source.shown if source is not None else Path(spec).name
            try:
                report = plugin_install.install(spec, uv_options=options, check=check)
            except InUseError:
                raise
            except InstallError as exc:
                if exc.refusal:
                    raise InUseError(exc.message, refusal=True) from None
                pins = plugin_sources.racetrack_pins()
                conflict = plugin_sources.explain_conflict(exc.output, pins, shown)
                raise InstallError(conflict, exc.output) if conflict else exc from None
        touched = plugin_records.names_of(service.plugins, report.distributions)
        service.plugins.reload(touched)
        change.distributions = report.distributions
        provided = {normalize(p.get("distribution") or "") for p in report.plugins}
        change.plugins = [
            info.as_dict()
            for info in service.plugins.describe()
            if normalize(info.distribution or "") in provided
        ] or report.plugins
        with Session(service.engine) as session:
            for distribution in sorted(provided & set(report.distributions)):
                plugin_records.record_install(
                    session,
                    _record(service, distribution, report.distributions, source, wheel, actor),
                )
            audit.record(
                session,
                EventKind.PLUGIN_INSTALLED,
                actor,
                subject=shown[:255],
                distributions=report.distributions,
                forced_jobs=change.jobs_stopped,
            )
            session.commit()
    return change


def uninstall(service: LifecycleService, actor: str, name: str, *, force: bool = False) -> Change:
    """Uninstall the distribution providing plugin ``name``; refuse it while jobs use its job
    types unless ``force``. Raise InUseError or InstallError."""
    _check_writable_environment()
    with changing:
        distribution, plugin_names = plugin_install.removable_distribution(name)
        refs = {
            ref
            for info in service.plugins.describe()
            if info.name in plugin_names
            for ref in info.job_types
        }
        stopped = _jobs_using(service, refs)
        if stopped and not force:
            raise InUseError(
                f"'{name}' provides job types that deployed jobs use: {'; '.join(stopped)}. "
                "Delete those jobs first, or uninstall with --force, and they stop working"
            )
        distribution, plugin_names = plugin_install.uninstall(name)
        service.plugins.reload(plugin_names)
        with Session(service.engine) as session:
            plugin_records.record_uninstall(session, distribution)
            audit.record(
                session,
                EventKind.PLUGIN_UNINSTALLED,
                actor,
                subject=name,
                distribution=distribution,
                forced_jobs=stopped,
            )
            session.commit()
    return Change(
        plugins=[{"name": plugin} for plugin in plugin_names],
        distributions={normalize(distribution): ""},
        jobs_stopped=stopped,
    )


def sync_at_start(service: LifecycleService) -> None:
    """Install and load the plugins the database records (see :func:`plugin_records.sync`)."""
    with changing, uv_options(service, None) as options:
        plugin_records.sync(service.engine, service.plugins, service.secrets, options)


def _jobs_using(service: LifecycleService, job_types: set[str]) -> list[str]:
    with Session(service.engine) as session:
        return plugin_records.jobs_using(session, job_types)


def _write_wheel(wheel: tuple[str, bytes] | None, folder: Path) -> str:
    if wheel is None:
        raise InstallError("give a plugin source or a wheel")
    path = folder / wheel[0]
    path.write_bytes(wheel[1])
    return str(path)


def _record(
    service: LifecycleService,
    distribution: str,
    versions: dict[str, str],
    source: PluginSource | None,
    wheel: tuple[str, bytes] | None,
    actor: str,
) -> InstalledPlugin:
    if source is None:
        assert wheel is not None
        return InstalledPlugin(
            distribution=distribution,
            version=versions[distribution],
            kind="wheel",
            source_shown=wheel[0],
            wheel_name=wheel[0],
            wheel=wheel[1],
            installed_by=actor,
        )
    return InstalledPlugin(
        distribution=distribution,
        version=versions[distribution],
        kind=source.kind,
        source_shown=source.shown,
        source_sealed=service.secrets.seal({"source": source.spec}),
        installed_by=actor,
    )


def _check_writable_environment() -> None:
    """Refuse a change up front when this server cannot write its own Python environment (a
    container image run as a non-root user on a read-only root file system)."""
    if not os.access(sysconfig.get_paths()["purelib"], os.W_OK):
        raise InstallError(
            f"this server's Python environment ({sys.prefix}) is read-only, so plugins cannot "
            "be installed or removed on it: add them to a derived image instead (FROM "
            "Racetrack's image, RUN pip install the plugin's wheel), see docs/plugins.md"
        )
