"""Server settings: one typed object, read once, from the environment, a config file and defaults.

Precedence, highest first: explicit overrides (command-line options), ``RACETRACK_*``
environment variables, ``<home>/config.yaml``, then the defaults below. The home folder
itself comes from an override, ``RACETRACK_HOME`` or ``~/.racetrack/server``.

    RACETRACK_HOME                  folder with the database, job files and the admin password
    RACETRACK_DATABASE_URL          sqlite:///path or postgresql://user:pass@host/db
    RACETRACK_INFRASTRUCTURE_TARGET default target for new jobs (local)
    RACETRACK_HOST                  address the services listen on (127.0.0.1)
    RACETRACK_LIFECYCLE_PORT, RACETRACK_DASHBOARD_PORT, RACETRACK_PUB_PORT
    RACETRACK_EXTERNAL_PUB_URL      Pub as callers reach it (http://127.0.0.1:7105/pub)
    RACETRACK_EXTERNAL_LIFECYCLE_URL
    RACETRACK_INTERNAL_LIFECYCLE_URL Lifecycle as Pub reaches it
    RACETRACK_INTERNAL_PUB_URL      Pub as jobs reach it (their PUB_URL)
    RACETRACK_ADMIN_PASSWORD        the first admin password (used only when creating it)
    RACETRACK_INTERNAL_TOKEN        the token Pub uses with Lifecycle (else <home>/internal-token)
    RACETRACK_ASYNC_CALL_LIFETIME   seconds an asynchronous call's task is kept (4 h)
    RACETRACK_PUB_ASYNC_*           POLL_TIMEOUT, MAX_ATTEMPTS, RETRY_DELAY, ADOPT_AFTER
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from racetrack_core.errors import RacetrackError

ENV_PREFIX = "RACETRACK_"
INTERNAL_TOKEN_FILE = "internal-token"  # noqa: S105 (a file name)


class SettingsError(RacetrackError):
    """A setting has a value of the wrong kind; the message names the setting and its source."""


@dataclass(frozen=True)
class Settings:
    """Everything a Racetrack server is configured with. Build it with ``Settings.load``."""

    home: Path
    database_url: str = ""
    infrastructure_target: str = "local"
    host: str = "127.0.0.1"
    lifecycle_port: int = 7102
    dashboard_port: int = 7103
    pub_port: int = 7105
    external_lifecycle_url: str = ""
    external_pub_url: str = ""
    internal_lifecycle_url: str = ""
    internal_pub_url: str = ""
    auth_required: bool = True
    #: Largest uploaded build context accepted, in bytes (compressed, after base64 decoding).
    build_context_max_bytes: int = 64 * 1024 * 1024
    #: Seconds a new replica may take to answer /live, then /ready, before the deploy fails.
    job_live_timeout: float = 300.0
    job_ready_timeout: float = 600.0
    #: Seconds between checks of every job's replicas (crashes, lost and orphaned jobs).
    job_watch_interval: float = 2.0
    #: Deployments running at once; more wait in the queue.
    deploy_workers: int = 4
    #: Pub: how long a permission answer is reused, and how long it may be reused when
    #: Lifecycle cannot be reached.
    pub_auth_cache_ttl: float = 5.0
    pub_auth_stale_ttl: float = 60.0
    pub_upstream_timeout: float = 300.0
    #: Asynchronous calls: seconds a task (and its answer) is kept before it is purged.
    async_call_lifetime: float = 4 * 3600.0
    #: Pub: how long a poll waits for an asynchronous call to finish before answering 202.
    pub_async_poll_timeout: float = 30.0
    #: Pub: attempts of an asynchronous call when the job refuses or drops the connection,
    #: and the seconds between two of them.
    pub_async_max_attempts: int = 3
    pub_async_retry_delay: float = 10.0
    #: Pub: an ongoing asynchronous call that no Pub touched for this long (Pub was stopped
    #: mid-call) is taken over and run again.
    pub_async_adopt_after: float = 30.0
    admin_password: str | None = field(default=None, repr=False)
    #: The token services use with each other (Pub with Lifecycle); from
    #: RACETRACK_INTERNAL_TOKEN or ``<home>/internal-token``, which the first start writes.
    internal_token: str | None = field(default=None, repr=False)
    #: Per-target settings, keyed by target name (from config.yaml only).
    targets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        home = Path(self.home).expanduser()
        object.__setattr__(self, "home", home)
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{home / 'racetrack.db'}")
        defaults = {
            "external_lifecycle_url": f"http://{self.host}:{self.lifecycle_port}/lifecycle",
            "external_pub_url": f"http://{self.host}:{self.pub_port}/pub",
            "internal_lifecycle_url": f"http://{self.host}:{self.lifecycle_port}/lifecycle",
            "internal_pub_url": f"http://{self.host}:{self.pub_port}/pub",
        }
        for name, value in defaults.items():
            if not getattr(self, name):
                object.__setattr__(self, name, value)
            object.__setattr__(self, name, getattr(self, name).rstrip("/"))

    @classmethod
    def load(
        cls,
        overrides: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Read the settings once: overrides, then the environment, then config.yaml."""
        environ = os.environ if environ is None else environ
        given = {k: v for k, v in (overrides or {}).items() if v is not None}
        home = Path(
            given.get("home") or environ.get(f"{ENV_PREFIX}HOME") or "~/.racetrack/server"
        ).expanduser()
        values: dict[str, Any] = {}
        config_file = home / "config.yaml"
        if config_file.is_file():
            loaded = YAML(typ="safe").load(config_file.read_text()) or {}
            if not isinstance(loaded, dict):
                raise SettingsError(f"{config_file} must hold a mapping of setting names")
            values.update(_checked(loaded, f"{config_file}"))
        from_env = {
            f.name: environ[f"{ENV_PREFIX}{f.name.upper()}"]
            for f in fields(cls)
            if f.name not in {"home", "targets"} and f"{ENV_PREFIX}{f.name.upper()}" in environ
        }
        values.update(_checked(from_env, "the environment"))
        values.update(_checked({k: v for k, v in given.items() if k != "home"}, "the options"))
        token_file = home / INTERNAL_TOKEN_FILE
        if not values.get("internal_token") and token_file.is_file():
            values["internal_token"] = token_file.read_text().strip()
        return cls(home=home, **values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _checked(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Convert values to the types of the fields they set; reject unknown names."""
    kinds = {f.name: f.type for f in fields(Settings)}
    result: dict[str, Any] = {}
    for name, value in values.items():
        if name not in kinds or name == "home":
            known = ", ".join(sorted(k for k in kinds if k != "home"))
            raise SettingsError(f"unknown setting '{name}' in {source}; known settings: {known}")
        kind = str(kinds[name])
        try:
            result[name] = _convert(value, kind)
        except (TypeError, ValueError):
            raise SettingsError(
                f"setting '{name}' in {source} must be {_describe(kind)}, not {value!r}"
            ) from None
    return result


def _convert(value: Any, kind: str) -> Any:
    if kind == "int":
        if isinstance(value, bool):
            raise TypeError
        return int(value)
    if kind == "float":
        if isinstance(value, bool):
            raise TypeError
        return float(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise ValueError
    if kind.startswith("Mapping"):
        if not isinstance(value, Mapping):
            raise TypeError
        return dict(value)
    if value is None:
        if "None" in kind:
            return None
        raise TypeError
    return str(value)


def _describe(kind: str) -> str:
    return {
        "int": "a whole number",
        "float": "a number",
        "bool": "true or false",
    }.get(kind, "a mapping" if kind.startswith("Mapping") else "text")
