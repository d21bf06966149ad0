"""The Lifecycle service's shared state: settings, plugins, database, drivers and secrets.

One ``LifecycleService`` lives in the app's lifespan state; routes, the deployment pipeline and
the job watcher reach everything through it, never through module globals. It knows nothing
of the pipeline or the watcher: the app factory builds them after it, handing it to them.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from racetrack_core.errors import NotFoundError
from racetrack_core.infrastructure import InfrastructureDriver, Replica, TargetContext
from racetrack_core.lifecycle.ports import DatabasePorts
from racetrack_core.lifecycle.responses import BadRequest
from racetrack_core.plugins import PluginManager
from racetrack_core.security import SecretBox, digests_equal, token_digest
from racetrack_core.settings import Settings

log = logging.getLogger("racetrack.lifecycle")


class LifecycleService:
    """Everything the Lifecycle API needs, created once per app."""

    def __init__(self, settings: Settings, plugins: PluginManager, engine: Engine) -> None:
        self.settings = settings
        self.plugins = plugins
        self.engine = engine
        self.secrets = SecretBox(settings.home / "secret.key")
        self._drivers: dict[str, InfrastructureDriver] = {}
        self._drivers_lock = threading.Lock()
        self._internal_digest = (
            token_digest(settings.internal_token) if settings.internal_token else None
        )

    def is_internal_token(self, token: str) -> bool:
        """Whether ``token`` is the services' internal token (compared in constant time)."""
        if self._internal_digest is None:
            return False
        return digests_equal(token_digest(token), self._internal_digest)

    @property
    def jobs_dir(self) -> Path:
        return self.settings.home / "jobs"

    def driver(self, target: str) -> InfrastructureDriver:
        """The driver of an installed infrastructure target, created on first use."""
        with self._drivers_lock:
            if target not in self._drivers:
                try:
                    registered = self.plugins.infrastructure_targets.get(target)
                except NotFoundError as exc:
                    raise BadRequest(str(exc)) from None
                context = TargetContext(
                    home=self.settings.home / "targets" / target,
                    settings=self.settings.targets.get(target, {}),
                    ports=DatabasePorts(self.engine, target),
                )
                context.home.mkdir(parents=True, exist_ok=True)
                self._drivers[target] = registered.driver(context)
            return self._drivers[target]

    def active_drivers(self) -> dict[str, InfrastructureDriver]:
        with self._drivers_lock:
            return dict(self._drivers)

    def close(self) -> None:
        for name, driver in self.active_drivers().items():
            try:
                driver.close()
            except Exception:
                log.exception("closing the driver of infrastructure target %s failed", name)


def replica_to_json(replica: Replica) -> str:
    return json.dumps(
        {
            "id": replica.id,
            "name": replica.name,
            "version": replica.version,
            "url": replica.url,
            "deployment_timestamp": replica.deployment_timestamp,
            **({"endpoints": list(replica.endpoints)} if replica.endpoints else {}),
        }
    )


def replica_from_json(text: str | None) -> Replica | None:
    if not text:
        return None
    data: dict[str, Any] = json.loads(text)
    return Replica(
        id=data["id"],
        name=data["name"],
        version=data["version"],
        url=data["url"],
        deployment_timestamp=int(data["deployment_timestamp"]),
        endpoints=tuple(str(url) for url in data.get("endpoints") or ()),
    )
