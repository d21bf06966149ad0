"""The installed plugins in the database: what every Lifecycle process installs at start.

Lifecycle records each plugin distribution it installs (with the uploaded wheel, or its source
sealed, since a URL may hold a password) and marks the ones it uninstalls. :func:`sync` runs
when a Lifecycle process starts: it installs the recorded versions that this Python
environment lacks, removes the ones uninstalled since, and loads the result, so that every
replica, also one started later, runs the same plugins.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Collection, Iterable
from pathlib import Path

from sqlmodel import Session, select

from racetrack_core import plugin_install
from racetrack_core.plugin_install import InstallError
from racetrack_core.plugin_sources import normalize
from racetrack_core.plugins import PluginManager
from racetrack_core.security import SecretBox
from racetrack_core.storage.models import InstalledPlugin, Job

log = logging.getLogger("racetrack.lifecycle.plugins")


def record_install(session: Session, record: InstalledPlugin) -> None:
    """Record (or replace the record of) an installed distribution; the caller commits."""
    existing = session.get(InstalledPlugin, record.distribution)
    if existing is not None:
        session.delete(existing)
        session.flush()
    session.add(record)


def record_uninstall(session: Session, distribution: str) -> None:
    """Mark a distribution uninstalled (its wheel is dropped); the caller commits."""
    existing = session.get(InstalledPlugin, normalize(distribution))
    if existing is not None:
        existing.uninstalled_at = time.time()
        existing.wheel = None
        session.add(existing)


def jobs_using(session: Session, job_types: Collection[str]) -> list[str]:
    """The jobs whose job type version is one of ``job_types``, as ``name version (type)``."""
    if not job_types:
        return []
    jobs = session.exec(select(Job).where(Job.job_type.in_(list(job_types)))).all()  # type: ignore[attr-defined]
    return sorted(f"{job.name} {job.version} ({job.job_type})" for job in jobs)


def sync(engine: object, plugins: PluginManager, secrets: SecretBox, uv_options: list[str]) -> None:
    """Make this environment's plugins those the database records; load what changed.

    A recorded plugin that cannot be installed here is logged and skipped: the process keeps
    the plugins it has, and says which one it lacks. Plugins the environment has at another
    version than the one loaded (another process upgraded a shared environment) are reloaded.
    """
    with Session(engine) as session:  # type: ignore[arg-type]
        records = list(session.exec(select(InstalledPlugin)).all())
    if not records:
        return
    installed = plugin_install.distributions()
    for record in records:
        have = installed.get(record.distribution)
        try:
            if record.uninstalled_at is not None and have is not None:
                log.info("removing plugin %s, uninstalled on another replica", record.distribution)
                failure = f"could not uninstall {record.distribution}"
                plugin_install.run_uv("uninstall", record.distribution, failure=failure)
            elif record.uninstalled_at is None and have != record.version:
                log.info(
                    "installing plugin %s %s (%s)",
                    record.distribution,
                    record.version,
                    record.source_shown,
                )
                _install(record, secrets, uv_options)
        except InstallError as exc:
            log.error(
                "plugin %s %s recorded in the database could not be installed here: %s",
                record.distribution,
                record.version,
                exc,
            )
    wanted = {r.distribution: r.version for r in records if r.uninstalled_at is None}
    stale = [
        info.name
        for info in plugins.describe()
        if info.distribution is not None
        and normalize(info.distribution) in {r.distribution for r in records}
        and wanted.get(normalize(info.distribution)) != info.version
    ]
    added = plugins.reload(stale)
    if stale or added:
        log.info("plugins reloaded: %s; loaded: %s", ", ".join(stale), ", ".join(added))


def fingerprint(engine: object) -> tuple[tuple[str, str, float | None], ...]:
    """What the database records, to notice when another replica changed it."""
    with Session(engine) as session:  # type: ignore[arg-type]
        records = session.exec(select(InstalledPlugin)).all()
        return tuple(sorted((r.distribution, r.version, r.uninstalled_at) for r in records))


def names_of(plugins: PluginManager, distributions: Iterable[str]) -> list[str]:
    """The registered plugins that the given distributions provide."""
    wanted = {normalize(name) for name in distributions}
    return [
        info.name
        for info in plugins.describe()
        if info.distribution is not None and normalize(info.distribution) in wanted
    ]


def _install(record: InstalledPlugin, secrets: SecretBox, uv_options: list[str]) -> None:
    if record.kind == "wheel":
        if not record.wheel or not record.wheel_name:
            raise InstallError("its wheel is not in the database")
        with tempfile.TemporaryDirectory(prefix="racetrack-plugin-") as folder:
            path = Path(folder) / record.wheel_name
            path.write_bytes(record.wheel)
            plugin_install.install(str(path), uv_options=uv_options)
        return
    spec = str(secrets.open(record.source_sealed).get("source") or "")
    if record.kind == "index":
        spec = f"{record.distribution}=={record.version}"
    plugin_install.install(spec, uv_options=uv_options)
