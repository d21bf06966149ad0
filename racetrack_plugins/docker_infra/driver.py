"""``DockerDriver``: jobs as containers on a Docker engine, reached by Pub on 127.0.0.1.

Images come from the job type's image recipe through the one image builder
(``racetrack_core.images``). Each replica is a container on the host's network with a free
port of its own (``JOB_PORT``); the job listens on 127.0.0.1 only. Docker's restart policy
brings crashed jobs back; ``replicas()`` reads each container's state. Containers keep running
when the server stops, and ``restore`` adopts them when it starts again.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import docker
import docker.errors

from racetrack_core.images import LABEL_JOB, LABEL_TIMESTAMP, LABEL_VERSION, ImageBuilder
from racetrack_core.infrastructure import (
    BuildLog,
    DeployError,
    JobSpec,
    Replica,
    ReplicaState,
    ReplicaStatus,
    TargetContext,
)
from racetrack_plugins.docker_infra import containers, logs, wrapping
from racetrack_plugins.docker_infra.containers import LABEL_HOME, LABEL_PORT, LABEL_REPLICA
from racetrack_plugins.docker_infra.settings import DockerSettings

ERROR_TAIL_LINES = 20
#: How long a removal that another thread or process started may take beyond the stop grace.
REMOVAL_WAIT_SECONDS = 30.0


class DockerDriver:
    """The ``docker`` target's driver (``racetrack_core.infrastructure.InfrastructureDriver``)."""

    def __init__(self, context: TargetContext) -> None:
        self.settings = DockerSettings.from_mapping(context.settings)
        self.home = containers.home_digest(context.home)
        self.builder = ImageBuilder(self.settings.build, context.home / "builds")
        try:
            self.client = (
                docker.DockerClient(base_url=self.settings.base_url, timeout=60)
                if (self.settings.base_url)
                else docker.from_env(timeout=60)
            )
            self.client.ping()
        except docker.errors.DockerException as error:
            raise DeployError(
                f"the docker target cannot reach the Docker engine: {error}. Start dockerd, or "
                "set targets.docker.base_url to its socket"
            ) from error
        self._lock = threading.Lock()
        self._known: dict[str, Replica] = {}
        self._ports = context.ports

    # ------------------------------------------------------------ deploying

    def prepare(self, spec: JobSpec, log: BuildLog) -> None:
        """Build the job's image (its layers cached between deployments)."""
        self.builder.build(spec, log)

    def start(self, spec: JobSpec) -> Replica:
        """Run the manifest's ``replicas`` containers of ``spec``'s image, each on a free port
        of its own, as one replica; return at once."""
        replica_id = f"rt-{spec.name}-{spec.version}-{secrets.token_hex(4)}".replace("+", "_")
        return self._run(spec, replica_id, [None] * instances_of(spec))

    def stop(self, replica: Replica) -> None:
        with self._lock:
            self._known.pop(replica.id, None)
        for container in self._group(replica.id):
            self._remove(container)
        if self._ports is not None:
            self._ports.release(replica.id)

    def retire(self, replica: Replica) -> None:
        """Let calls in flight end, stop the old container, and drop images no longer kept."""
        time.sleep(self.settings.drain_seconds)
        self.stop(replica)
        self._prune_images(replica.name, replica.version, keep=2)

    def delete(self, name: str, version: str) -> None:
        """Remove every container of a job version, orphans included, then its images."""
        for container in self._containers(name, version):
            replica_id = container.labels.get(LABEL_REPLICA, "")
            with self._lock:
                self._known.pop(replica_id, None)
            self._remove(container)
            if self._ports is not None:
                self._ports.release(replica_id)
        self._prune_images(name, version, keep=0)

    def restore(self, spec: JobSpec, replica: Replica) -> Replica:
        """Adopt the containers that still run ``spec``, start those stopped by hand, and run
        the missing ones again on their own ports (claimed by this replica already) when free,
        rebuilding the image if it is gone. Instances that run are left alone."""
        present: dict[str, Any] = {}
        for container in self._group(replica.id):
            url = f"http://127.0.0.1:{container.labels.get(LABEL_PORT)}"
            if url not in replica.urls:
                self._remove(container)  # not an instance of the replica as recorded
                continue
            if container.status != "running":
                try:
                    container.start()
                except docker.errors.APIError:
                    self._remove(container)
                    continue
            present[url] = container
        missing = [(i, url) for i, url in enumerate(replica.urls) if url not in present]
        if not missing:
            with self._lock:
                self._known[replica.id] = replica
            return replica
        if not self._image_exists(self.builder.tag_of(spec)):
            self.builder.build(spec, lambda line: None)
        preferred: list[int | None] = [port_of(url) for _, url in missing]
        ports = self._claim_ports(spec, replica.id, preferred)
        urls = list(replica.urls)
        for (instance, url), port in zip(missing, ports, strict=True):
            urls[instance] = f"http://127.0.0.1:{port}"
            if port != port_of(url) and self._ports is not None:
                self._ports.release(replica.id, port_of(url))  # taken meanwhile: moved
        restored = replace(replica, url=urls[0], endpoints=tuple(urls) if len(urls) > 1 else ())
        with self._lock:
            self._known[replica.id] = restored
        for (instance, _), port in zip(missing, ports, strict=True):
            self._run_container(spec, restored, instance, port)
        return restored

    def close(self) -> None:
        """Stop the containers only when ``stop_on_close`` says so; they are adopted otherwise."""
        if self.settings.stop_on_close:
            with self._lock:
                known = list(self._known.values())
            for replica in known:
                self.stop(replica)
        self.client.close()

    # ------------------------------------------------------------ reporting

    def replicas(self) -> list[ReplicaState]:
        """Every job container of this server: known ones by state, the rest as orphans."""
        found = []
        grouped = containers.groups(self._containers())
        with self._lock:
            known = dict(self._known)
        for replica_id, group in grouped.items():
            if replica_id not in known:
                found.append(ReplicaState(containers.replica_of(group), ReplicaStatus.ORPHANED))
                continue
            tails = {c.id: self._tail(c) for c in group if c.status != "running"}
            limit = self.settings.crash_limit
            found.append(containers.group_state(group, limit, tails, known[replica_id]))
        for replica_id, replica in known.items():
            if replica_id not in grouped:  # every container of it was removed
                found.append(containers.group_state([], self.settings.crash_limit, {}, replica))
        return found

    def logs(self, name: str, version: str, tail: int = 0) -> str:
        container = self._newest(name, version)
        if container is None:
            return ""
        raw = container.logs(tail=tail if tail > 0 else "all")
        return bytes(raw).decode("utf-8", "replace")

    def follow_logs(
        self, name: str, version: str, tail: int = 20, stop: threading.Event | None = None
    ) -> Iterator[str]:
        """The last lines, then each new one, until closed or ``stop`` is set."""
        container = self._newest(name, version)
        if container is None:
            return
        yield from logs.follow(container, tail, stop)

    # ------------------------------------------------------------ internals

    def _run(self, spec: JobSpec, replica_id: str, preferred: list[int | None]) -> Replica:
        """Start one container per entry of ``preferred`` (a port to reuse, or None)."""
        ports = self._claim_ports(spec, replica_id, preferred)
        urls = tuple(f"http://127.0.0.1:{port}" for port in ports)
        replica = Replica(
            replica_id, spec.name, spec.version, urls[0], spec.deployment_timestamp,
            endpoints=urls if len(urls) > 1 else (),
        )  # fmt: skip
        with self._lock:
            self._known[replica_id] = replica
        try:
            for instance, port in enumerate(ports):
                self._run_container(spec, replica, instance, port)
        except DeployError:
            self.stop(replica)
            raise
        return replica

    def _run_container(self, spec: JobSpec, replica: Replica, instance: int, port: int) -> None:
        """Start instance number ``instance`` of ``replica`` on ``port``."""
        memory, cpus = self.settings.limits(spec.manifest.get("resources"))
        name = containers.instance_name(replica, instance)
        try:
            # An image that carries a network wrapper (docker-proxy) says how it must be run.
            options = wrapping.run_options(self.client.images.get(self.builder.tag_of(spec)))
            self.client.containers.run(
                self.builder.tag_of(spec),
                name=name,
                detach=True,
                network_mode="host",
                environment={**spec.env, "JOB_PORT": str(port), "JOB_REPLICA": name},
                labels=containers.labels_of(self.home, replica, spec.deployment_id, port, instance),
                restart_policy={"Name": self.settings.restart_policy},
                mem_limit=memory,
                nano_cpus=int(cpus * 1e9),
                **options,
            )
        except docker.errors.DockerException as error:
            raise DeployError(f"cannot start {spec.name} {spec.version}: {error}") from error

    def _containers(
        self, name: str | None = None, version: str | None = None, *, everyone: bool = False
    ) -> list[Any]:
        """Job containers of this server (``everyone``: of any server on this engine)."""
        filters = [LABEL_REPLICA] if everyone else [f"{LABEL_HOME}={self.home}"]
        if name is not None:
            filters.append(f"{LABEL_JOB}={name}")
        if version is not None:
            filters.append(f"{LABEL_VERSION}={version}")
        return self._list(filters)

    def _list(self, filters: list[str]) -> list[Any]:
        """The containers with these labels that can be inspected: the engine lists one that
        another Lifecycle is removing, or still creating, then answers 404 for it."""
        found = self.client.containers.list(
            all=True, filters={"label": filters}, ignore_removed=True
        )
        return list(found)

    def _claim_ports(
        self, spec: JobSpec, replica_id: str, preferred: list[int | None]
    ) -> list[int]:
        """Free ports, one per instance, claimed in the shared record (when there is one) so
        that no other Lifecycle process hands them out; the engine's labels count too."""
        taken = {int(c.labels.get(LABEL_PORT, 0)) for c in self._containers(everyone=True)}
        if self._ports is not None:
            taken |= self._ports.taken() - set(filter(None, preferred))
        ports: list[int] = []
        for wanted in preferred:
            while True:
                port = containers.choose_port(taken | set(ports), preferred=wanted)
                if self._ports is None or self._ports.claim(
                    port, replica_id, spec.name, spec.version, spec.deployment_id
                ):
                    break
                taken.add(port)  # claimed by another process meanwhile
                wanted = None
            ports.append(port)
        return ports

    def _group(self, replica_id: str) -> list[Any]:
        """The containers (instances) of one replica."""
        return self._list([f"{LABEL_HOME}={self.home}", f"{LABEL_REPLICA}={replica_id}"])

    def _newest(self, name: str, version: str) -> Any | None:
        found = self._containers(name, version)
        return max(found, key=lambda c: str(c.attrs.get("Created", "")), default=None)

    def _tail(self, container: Any) -> str:
        try:
            return bytes(container.logs(tail=ERROR_TAIL_LINES)).decode("utf-8", "replace")
        except docker.errors.DockerException:
            return ""

    def _remove(self, container: Any) -> None:
        """Stop and remove a container. Another thread or Lifecycle may be removing it at the
        same time (a delete while the replaced replica is retired): the engine then answers
        409 "removal ... is already in progress", and this waits until it is gone."""
        grace = self.settings.stop_grace_seconds
        try:
            container.stop(timeout=int(grace))
            container.remove(force=True)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if exc.status_code != 409:
                raise
            deadline = time.monotonic() + grace + REMOVAL_WAIT_SECONDS
            while time.monotonic() < deadline:
                try:
                    container.reload()
                except docker.errors.NotFound:
                    return
                time.sleep(0.1)
            raise

    def _image_exists(self, tag: str) -> bool:
        try:
            self.client.images.get(tag)
        except docker.errors.ImageNotFound:
            return False
        return True

    def _prune_images(self, name: str, version: str, keep: int) -> None:
        """Remove the images of a job version that no container uses, but the ``keep`` newest
        (the current one and the previous, so that a rollback needs no rebuild)."""
        labels = [f"{LABEL_JOB}={name}", f"{LABEL_VERSION}={version}"]
        images = self.client.images.list(filters={"label": labels})
        images.sort(key=deployment_timestamp, reverse=True)
        used = {c.image.id for c in self._containers(name, version) if c.image is not None}
        for image in images[keep:]:
            if image.id not in used:
                # An image still used by another server's container is kept.
                with contextlib.suppress(docker.errors.APIError):
                    self.client.images.remove(image.id, force=True)


def port_of(url: str) -> int:
    """The port of an instance's base URL (``http://127.0.0.1:PORT``)."""
    return int(url.rsplit(":", 1)[1])


def instances_of(spec: JobSpec) -> int:
    """How many containers the manifest's ``replicas`` asks for (at least one)."""
    replicas = spec.manifest.get("replicas")
    return replicas if isinstance(replicas, int) and replicas > 1 else 1


def deployment_timestamp(image: Any) -> int:
    """The deployment an image was built for, newest highest (0 when unlabelled)."""
    try:
        return int((image.labels or {}).get(LABEL_TIMESTAMP, 0))
    except ValueError:
        return 0
