"""``KubernetesDriver``: each job version a Deployment, a Service, a NetworkPolicy and a Secret.

A deployment of a job version writes its objects (``objects.render``): a new Secret of its own,
then the Service, the NetworkPolicy and the Deployment, created or replaced. Replacing the
Deployment's pod template starts a rolling update that the cluster runs: new pods take traffic
through the Service only once ready, and no old pod stops before a new one is ready
(``maxUnavailable: 0``). The replica a deployment returns is the Service's address, with an id
naming the deployment, so that Lifecycle tells the new rollout from the one it replaced.
``prepare`` reads the built image's labels: one that asks for a network wrapper (a docker-proxy
job's) runs the command of its ``racetrack.pod-proxy`` label in a second container of the pod.

- ``stop`` (the new deployment failed) puts back the pod template it replaced, kept in an
  annotation, or removes the job version when there was none;
- ``retire`` (the new deployment serves) drops the replaced deployment's Secret;
- ``replicas`` lists the Deployments and pods of this owner by label and judges each
  (``status``), reporting every pod as an instance and the serving pods' own addresses, over
  which Pub spreads calls; during a rollout the deployment being replaced is reported too
  (the job record names it until the switch). Nothing is kept in this process's memory, so
  every Lifecycle replica sees the same thing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import lightkube

from racetrack_core.following import follow_lines
from racetrack_core.images import LABEL_NETWORK_WRAPPER as WRAPPER_LABEL
from racetrack_core.images import LABEL_POD_PROXY, ImageBuilder
from racetrack_core.infrastructure import (
    BuildLog,
    DeployError,
    JobSpec,
    Replica,
    ReplicaState,
    TargetContext,
)
from racetrack_plugins.k8s_infra import names, objects, status
from racetrack_plugins.k8s_infra.cluster import Cluster, connect, interrupt
from racetrack_plugins.k8s_infra.image_registry import ImageRegistry, engine_client
from racetrack_plugins.k8s_infra.objects import Release
from racetrack_plugins.k8s_infra.settings import KubernetesSettings


class KubernetesDriver:
    """The ``kubernetes`` target's driver (``racetrack_core.infrastructure``'s protocol)."""

    def __init__(self, context: TargetContext, client: lightkube.Client | None = None) -> None:
        self.settings = KubernetesSettings.from_mapping(context.settings)
        self.cluster = Cluster(client or connect(self.settings), self.settings.namespace)
        self.builder = ImageBuilder(self.settings.build, context.home / "builds")
        self._lock = threading.Lock()
        #: What ``prepare`` made for ``start``: the image's reference and its proxy's command.
        self._images: dict[tuple[str, str, str], tuple[str, tuple[str, ...]]] = {}
        self._registry: ImageRegistry | None = None
        self._engine: Any = None

    # ------------------------------------------------------------ deploying

    def prepare(self, spec: JobSpec, log: BuildLog) -> None:
        """Build the job's image and push it to the registry; the Deployment that ``start``
        writes names it by digest."""
        built = self.builder.build(spec, log)
        pod_proxy = self._pod_proxy(built.tag)
        reference = built.tag
        registry = self._image_registry()
        if registry is not None:
            reference = registry.push(built.tag, spec.name, log)
        with self._lock:
            self._images[_key(spec)] = (reference, pod_proxy)

    def start(self, spec: JobSpec) -> Replica:
        """Write the job version's objects for ``spec`` and return its Service at once."""
        with self._lock:
            image, pod_proxy = self._images.pop(_key(spec), (self.builder.tag_of(spec), ()))
        release = self.release(spec, image, pod_proxy)
        rendered = objects.render(release, spec.env, self.settings)
        secret, *rest = rendered
        self._write_secret(secret)
        for obj in rest[:-1]:
            self.cluster.write(obj)
        self._write_deployment(rest[-1])
        return self._replica(release)

    def release(self, spec: JobSpec, image: str, pod_proxy: tuple[str, ...] = ()) -> Release:
        """What ``objects`` renders for one deployment of ``spec``."""
        return Release(
            name=spec.name,
            version=spec.version,
            deployment_id=spec.deployment_id,
            deployment_timestamp=spec.deployment_timestamp,
            image=image,
            replicas=replicas_of(spec),
            resources=self.settings.resources(spec.manifest.get("resources")),
            pod_proxy=pod_proxy,
        )

    def stop(self, replica: Replica) -> None:
        """Undo a deployment that failed: the pod template it replaced comes back (a rolling
        update back to it), or the job version goes when it had none."""
        name = names.object_name(replica.name, replica.version)
        current = self.cluster.get("Deployment", name)
        if current is None or _replica_id(current) != replica.id:
            self._drop_secret(replica)
            return
        previous = _annotations(current).get(names.ANNOTATION_PREVIOUS)
        if not previous:
            self.delete(replica.name, replica.version)
            return
        restored = json.loads(previous)
        rolled_back = {
            **current,
            "metadata": _without_previous(current["metadata"], restored),
            "spec": {**current["spec"], "template": restored},
        }
        self.cluster.write(rolled_back)
        self._drop_secret(replica)

    def retire(self, replica: Replica) -> None:
        """Forget the deployment a newer one replaced: its Secret and the kept template. When
        it is still the current one (the job moved to another target), remove it all."""
        name = names.object_name(replica.name, replica.version)
        current = self.cluster.get("Deployment", name)
        if current is not None and _replica_id(current) == replica.id:
            self.delete(replica.name, replica.version)
            return
        if current is not None and names.ANNOTATION_PREVIOUS in _annotations(current):
            notes = dict(_annotations(current))
            del notes[names.ANNOTATION_PREVIOUS]
            self.cluster.write(
                {**current, "metadata": {**current["metadata"], "annotations": notes}}
            )
        self._drop_secret(replica)

    def delete(self, name: str, version: str) -> None:
        """Remove every object of a job version, Secrets of every deployment included."""
        object_name = names.object_name(name, version)
        for kind in ("Deployment", "NetworkPolicy", "Service"):
            self.cluster.delete(kind, object_name)
        selector = names.selector(self.settings.owner, name, version)
        for secret in self.cluster.list("Secret", selector):
            self.cluster.delete("Secret", secret["metadata"]["name"])

    def restore(self, spec: JobSpec, replica: Replica) -> Replica:
        """The cluster keeps jobs running while Lifecycle restarts: adopt the Deployment when
        it still runs ``replica``; else write the objects again (rebuilding the image)."""
        current = self.cluster.get("Deployment", names.object_name(spec.name, spec.version))
        if current is not None and _replica_id(current) == replica.id:
            return status.replica_of(current, self._url(spec.name, spec.version))
        self.prepare(spec, lambda line: None)
        return self.start(spec)

    def close(self) -> None:
        """Jobs keep running on the cluster; only the clients are closed."""
        self.cluster.close()
        if self._engine is not None:
            self._engine.close()

    # ------------------------------------------------------------ reporting

    def replicas(self) -> list[ReplicaState]:
        """The state of every job version of this owner, from its Deployment and pods; while
        a redeploy rolls out, the deployment it replaces too (its pods still serve, and the
        job record names it until the new one is switched to)."""
        owner = {names.LABEL_OWNER: names.label_value(self.settings.owner)}
        deployments = self.cluster.list("Deployment", owner)
        pods = self.cluster.list("Pod", owner)
        found = []
        for deployment in deployments:
            notes = _annotations(deployment)
            job, version = notes.get(names.ANNOTATION_JOB, ""), notes.get(names.ANNOTATION_VERSION)
            selector = names.selector(self.settings.owner, job, str(version))
            own = [pod for pod in pods if _labelled(pod, selector)]
            url = self._url(job, str(version))
            for described in (deployment, _replaced(deployment)):
                if described is not None:
                    found.append(
                        status.state_of(
                            described, own, url, self.settings.crash_limit, self.settings.job_port
                        )
                    )
        return found

    def logs(self, name: str, version: str, tail: int = 0) -> str:
        pod = self._newest_pod(name, version)
        return "" if pod is None else self.cluster.logs(pod, objects.CONTAINER, tail)

    def follow_logs(
        self, name: str, version: str, tail: int = 20, stop: threading.Event | None = None
    ) -> Iterator[str]:
        """The last lines of the newest pod, then each new one, until closed or ``stop``."""
        pod = self._newest_pod(name, version)
        if pod is None:
            return
        response = self.cluster.stream_logs(pod, objects.CONTAINER, tail)
        yield from follow_lines(
            response.iter_lines(), lambda: interrupt(response), stop, "k8s-logs"
        )

    # ------------------------------------------------------------ internals

    def _replica(self, release: Release) -> Replica:
        return Replica(
            id=release.replica_id,
            name=release.name,
            version=release.version,
            url=self._url(release.name, release.version),
            deployment_timestamp=release.deployment_timestamp,
        )

    def _image_registry(self) -> ImageRegistry | None:
        """The registry images go to (None: none is set), with a client of the builder's
        engine made on first use."""
        if self.settings.registry is None:
            return None
        engine = self._engine_client()
        with self._lock:
            if self._registry is None:
                self._registry = ImageRegistry(self.settings.registry, engine)
            return self._registry

    def _engine_client(self) -> Any:
        """A client of the engine the builder uses (``build.engine``), made on first use."""
        with self._lock:
            if self._engine is None:
                self._engine = engine_client(self.settings.build.engine)
            return self._engine

    def _pod_proxy(self, tag: str) -> tuple[str, ...]:
        """The command of the proxy that serves beside the image's own server in its pods
        (label ``racetrack.pod-proxy``); empty for an image that serves alone. An image that
        asks for a network wrapper without naming that command is refused."""
        labels = self._engine_client().images.get(tag).labels or {}
        command = tuple(str(labels.get(LABEL_POD_PROXY) or "").split())
        if command and not command[0].startswith("/"):
            raise DeployError(
                f"this job's image names {command[0]!r} in its label {LABEL_POD_PROXY}; the "
                "label must start with the absolute path of a program in the image"
            )
        if WRAPPER_LABEL in labels and not command:
            raise DeployError(
                "this job's image must be started through a network wrapper (label "
                f"{WRAPPER_LABEL}) and names no command to serve beside it in a pod (label "
                f"{LABEL_POD_PROXY}), so the kubernetes target cannot run it; deploy it to "
                "the docker target"
            )
        return command

    def _url(self, name: str, version: str) -> str:
        return objects.service_url(names.object_name(name, version), self.settings)

    def _write_secret(self, secret: dict[str, Any]) -> None:
        """Secrets are immutable: a deployment run again gets its Secret anew."""
        self.cluster.delete("Secret", secret["metadata"]["name"])
        self.cluster.write(secret)

    def _write_deployment(self, deployment: dict[str, Any]) -> None:
        """Create or replace the Deployment, keeping the pod template it replaces (when it is
        another deployment's) so that ``stop`` can put it back."""
        stored = self.cluster.get("Deployment", deployment["metadata"]["name"])
        if stored is not None and _replica_id(stored) != _replica_id(deployment):
            template = stored["spec"]["template"]
            notes = {**_annotations(deployment), names.ANNOTATION_PREVIOUS: json.dumps(template)}
            deployment = {
                **deployment,
                "metadata": {**deployment["metadata"], "annotations": notes},
            }
        self.cluster.write(deployment)

    def _drop_secret(self, replica: Replica) -> None:
        deployment_id = replica.id.rpartition("@")[2]
        if deployment_id:
            self.cluster.delete(
                "Secret", names.secret_name(replica.name, replica.version, deployment_id)
            )

    def _newest_pod(self, name: str, version: str) -> str | None:
        """The newest pod of the job version's current deployment (else of any deployment)."""
        pods = self.cluster.list("Pod", names.selector(self.settings.owner, name, version))
        current = self.cluster.get("Deployment", names.object_name(name, version))
        mine = status.current_pods(current, pods) if current is not None else []
        chosen = max(
            mine or pods,
            key=lambda pod: str((pod.get("metadata") or {}).get("creationTimestamp") or ""),
            default=None,
        )
        return None if chosen is None else str(chosen["metadata"]["name"])


def replicas_of(spec: JobSpec) -> int:
    """How many pods the manifest's ``replicas`` asks for (at least one)."""
    asked = spec.manifest.get("replicas")
    return asked if isinstance(asked, int) and not isinstance(asked, bool) and asked > 1 else 1


def _key(spec: JobSpec) -> tuple[str, str, str]:
    return (spec.name, spec.version, spec.deployment_id)


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def _replica_id(obj: dict[str, Any]) -> str:
    return _annotations(obj).get(names.ANNOTATION_REPLICA, "")


def _labelled(obj: dict[str, Any], labels: dict[str, str]) -> bool:
    found = (obj.get("metadata") or {}).get("labels") or {}
    return all(found.get(key) == value for key, value in labels.items())


def _replaced(deployment: dict[str, Any]) -> dict[str, Any] | None:
    """The deployment a redeploy replaces, described as its own Deployment (its pod template's
    annotations; no status: the Deployment's conditions are the new rollout's), or None."""
    kept = _annotations(deployment).get(names.ANNOTATION_PREVIOUS)
    try:
        template = json.loads(kept) if kept else None
    except ValueError:
        return None
    if not isinstance(template, dict):
        return None
    return {"metadata": _without_previous(deployment.get("metadata") or {}, template)}


def _without_previous(meta: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
    """The Deployment's metadata describing ``template``'s deployment again, with no kept
    template: the annotations of the pod template say which deployment it is."""
    notes = {
        k: v for k, v in _annotations({"metadata": meta}).items() if k != names.ANNOTATION_PREVIOUS
    }
    notes.update(
        {
            key: value
            for key, value in ((template.get("metadata") or {}).get("annotations") or {}).items()
            if key.startswith(names.PREFIX)
        }
    )
    return {**meta, "annotations": notes}
