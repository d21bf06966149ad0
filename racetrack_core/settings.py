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
    RACETRACK_PUB_AUTH_CACHE_TTL, RACETRACK_PUB_AUTH_STALE_TTL, RACETRACK_PUB_UPSTREAM_TIMEOUT
    RACETRACK_PUB_ASYNC_*           POLL_TIMEOUT, MAX_ATTEMPTS, RETRY_DELAY, ADOPT_AFTER
    RACETRACK_BASE_IMAGES_*         CACHE, MIRROR, CA_BUNDLE, DOCKER_CLI: racetrack images bootstrap
    RACETRACK_PLUGIN_INDEX_URL      the package index plugins are installed from (uv's own)
    RACETRACK_SOURCE_ALLOWED_HOSTS  loopback or private hosts sources may come from (a,b:port)
    RACETRACK_PLUGIN_SYNC_INTERVAL  seconds between checks of the plugins other replicas installed
    RACETRACK_DATABASE_POOL_SIZE, RACETRACK_DATABASE_MAX_OVERFLOW  PostgreSQL connections (10, 10)
    RACETRACK_LEASE_TTL             seconds a replica's deployment claims live without a heartbeat

Pub's settings are declared once, in :class:`racetrack_core.pub.config.PubConfig`: the fields
marked there as server settings are read here under their setting names and kept in
``Settings.pub``, which is Pub's whole configuration (with Lifecycle's internal URL and the
internal token filled in).
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
from racetrack_core.pub.config import PubConfig, server_settings

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
    #: PostgreSQL connections each process keeps open, and how many more it may open under load.
    database_pool_size: int = 10
    database_max_overflow: int = 10
    #: Seconds a Lifecycle process's claim on a deployment (and the job watcher's lease) holds
    #: without a heartbeat; a process that is gone longer than that loses them (docs/replicas.md).
    lease_ttl: float = 30.0
    #: Pub's configuration. Its server settings (``pub_auth_cache_ttl``, ``async_call_lifetime``
    #: and the others of :func:`racetrack_core.pub.config.server_settings`) are read with the
    #: others; ``lifecycle_url`` and ``internal_token`` always follow this object's.
    pub: PubConfig = field(default_factory=PubConfig)
    admin_password: str | None = field(default=None, repr=False)
    #: The token services use with each other (Pub with Lifecycle); from
    #: RACETRACK_INTERNAL_TOKEN or ``<home>/internal-token``, which the first start writes.
    internal_token: str | None = field(default=None, repr=False)
    #: racetrack images bootstrap: the cache of Debian roots (shared by every home on the
    #: machine, as the engine is), the Debian mirror (empty: the one this host's apt uses),
    #: and a PEM bundle of the site's CAs to add to every base image's trust store.
    base_images_cache: str = "/var/cache/racetrack/base-images"
    base_images_mirror: str = ""
    base_images_ca_bundle: str = ""
    #: The docker command that imports them (a name on PATH or a path; no BuildKit needed).
    base_images_docker_cli: str = "docker"
    #: The package index that ``racetrack plugin install NAME`` resolves from; empty: whatever
    #: uv is configured with on the server (its configuration files or its default).
    plugin_index_url: str = ""
    #: Loopback or private hosts (``name`` or ``name:port``, comma-separated) that sources fetched
    #: by the server (a job's git remote, a plugin's package index or git URL) may be on; others
    #: are refused.
    source_allowed_hosts: str = ""
    #: Reverse proxies (addresses or networks, comma-separated, like ``10.0.0.0/8``) whose
    #: ``X-Forwarded-For`` Lifecycle and the Dashboard believe, so that the login limit per
    #: address counts each client behind an Ingress; empty: the TCP peer is the client. Pub
    #: never believes callers' forwarding headers (it writes its own).
    trusted_proxies: str = ""
    #: Seconds a request line and headers may take from their first byte at Lifecycle and the
    #: Dashboard (408 after; Pub's own is ``pub_request_head_timeout``).
    request_head_timeout: float = 15.0
    #: Seconds between checks of the installed plugins that the database records, so that a
    #: running Lifecycle follows an install made through another replica (0: only at start).
    plugin_sync_interval: float = 10.0
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
        pub = dataclasses.replace(
            self.pub,
            lifecycle_url=self.internal_lifecycle_url,
            internal_token=self.internal_token,
            # A stopped Pub's calls are taken over after async_adopt_after: touch them 3 times.
            async_heartbeat_interval=min(10.0, self.pub.async_adopt_after / 3),
        )
        object.__setattr__(self, "pub", pub)

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
            name: environ[f"{ENV_PREFIX}{name.upper()}"]
            for name in _kinds()
            if name != "targets" and f"{ENV_PREFIX}{name.upper()}" in environ
        }
        values.update(_checked(from_env, "the environment"))
        values.update(_checked({k: v for k, v in given.items() if k != "home"}, "the options"))
        token_file = home / INTERNAL_TOKEN_FILE
        if not values.get("internal_token") and token_file.is_file():
            values["internal_token"] = token_file.read_text().strip()
        pub_fields = server_settings()
        pub = {pub_fields[k].name: values.pop(k) for k in list(values) if k in pub_fields}
        return cls(home=home, pub=PubConfig(**pub), **values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _kinds() -> dict[str, object]:
    """Every setting's name and type: the fields of :class:`Settings` (but ``home`` and ``pub``)
    and Pub's server settings."""
    kinds: dict[str, object] = {f.name: f.type for f in fields(Settings)}
    del kinds["home"], kinds["pub"]
    kinds.update({name: f.type for name, f in server_settings().items()})
    return kinds


def _checked(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Convert values to the types of the settings they set; reject unknown names."""
    kinds = _kinds()
    result: dict[str, Any] = {}
    for name, value in values.items():
        if name not in kinds:
            known = ", ".join(sorted(kinds))
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
