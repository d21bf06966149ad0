"""Pushing a built job image to the registry the cluster pulls from, and naming it by digest.

The image builder leaves the image in the Docker engine that built it. A cluster's nodes cannot
see that engine, so the image is tagged ``<address>/<job>:<tag>``, pushed with the registry's
credentials (given to the engine per push, never written to a docker config file), and the
Deployment refers to it as ``<address>/<job>@sha256:...``: the digest the registry answered, so
that every pod of a deployment runs the very image that was built, whatever happens to tags.
The extra tag is removed from the engine afterwards.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

from racetrack_core.errors import RacetrackError
from racetrack_core.infrastructure import BuildLog, DeployError

WHERE = "targets.kubernetes.registry"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class RegistrySettings:
    """Where job images go: ``address`` (``host[:port][/path]``, like ``registry.example:5000/
    racetrack``), and the account that may push there: ``username`` with ``password``, or
    ``password_file`` (a file holding it, such as a mounted Secret). The cluster pulls with the
    target's ``image_pull_secret``, which names a Secret holding the same or a read-only
    account."""

    address: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    password_file: Path | None = None

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> RegistrySettings:
        known = ("address", "username", "password", "password_file")
        for name, value in values.items():
            if name not in known:
                raise RacetrackError(
                    f"config.yaml, {WHERE}: unknown setting {name!r}. Known: {', '.join(known)}"
                )
            if not isinstance(value, str) or not value:
                raise RacetrackError(f"config.yaml, {WHERE}.{name}: give a string")
        if "address" not in values:
            raise RacetrackError(
                f"config.yaml, {WHERE}.address: name the registry, like registry.example:5000"
            )
        if "password" in values and "password_file" in values:
            raise RacetrackError(f"config.yaml, {WHERE}: give password or password_file, not both")
        file = values.get("password_file")
        return cls(
            address=str(values["address"]).rstrip("/"),
            username=values.get("username"),
            password=values.get("password"),
            password_file=Path(file) if file else None,
        )

    def auth_config(self) -> dict[str, str] | None:
        """What the engine sends the registry (None: push without credentials)."""
        if self.username is None:
            return None
        password = self.password
        if self.password_file is not None:
            try:
                password = self.password_file.read_text().strip()
            except OSError as error:
                raise DeployError(
                    f"{WHERE}.password_file: cannot read {self.password_file}: {error.strerror}"
                ) from error
        return {"username": self.username, "password": password or ""}


def engine_client(engine: str | None) -> Any:
    """A client of the engine images are built in (``engine``: its address; None: the
    environment's ``DOCKER_HOST`` or the default socket)."""
    try:
        client = docker.DockerClient(base_url=engine) if engine else docker.from_env()
        client.ping()
    except docker.errors.DockerException as error:
        raise DeployError(
            f"the kubernetes target cannot reach the Docker engine that builds images "
            f"({engine or 'DOCKER_HOST or the default socket'}): {error}. Set "
            "targets.kubernetes.build.engine to its address"
        ) from error
    return client


class ImageRegistry:
    """Pushes images from an engine to one registry."""

    def __init__(self, settings: RegistrySettings, client: Any) -> None:
        self.settings = settings
        self.client = client

    def push(self, local: str, job: str, log: BuildLog) -> str:
        """Push the engine's image ``local`` as ``<address>/<job>`` and return its reference by
        digest; DeployError with the registry's answer when the push fails."""
        repository = f"{self.settings.address}/{job}"
        tag = _TAG_UNSAFE.sub("_", local.rpartition(":")[2])[:128]
        auth = self.settings.auth_config()
        try:
            self.client.images.get(local).tag(repository, tag)
        except docker.errors.DockerException as error:
            raise DeployError(f"cannot tag image {local} for {repository}: {error}") from error
        log(f"pushing image {repository}:{tag}")
        digest, refused = None, None
        try:
            events = self.client.images.push(
                repository, tag, stream=True, decode=True, auth_config=auth
            )
            for event in events:  # read to the end, so the engine's connection is released
                refused = refused or event.get("error")
                digest = (event.get("aux") or {}).get("Digest") or digest
        except docker.errors.DockerException as error:
            refused = str(error)
        finally:
            self._untag(f"{repository}:{tag}")
        if refused:
            said = self._scrub(str(refused), auth)
            raise DeployError(f"pushing image {repository}:{tag} failed: {said}")
        if not digest or not _DIGEST.fullmatch(str(digest)):
            raise DeployError(f"the registry gave no digest for {repository}:{tag}")
        log(f"pushed image {repository}@{digest}")
        return f"{repository}@{digest}"

    def _untag(self, reference: str) -> None:
        # A failed untag must not hide the push's own outcome.
        with contextlib.suppress(docker.errors.DockerException):
            self.client.images.remove(reference, noprune=True)

    @staticmethod
    def _scrub(text: str, auth: Mapping[str, str] | None) -> str:
        password = (auth or {}).get("password")
        return text.replace(password, "[secret]") if password else text
