"""The Kubernetes target's settings: ``targets: {kubernetes: {...}}`` in ``config.yaml``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from racetrack_core.errors import RacetrackError
from racetrack_core.images import BuilderSettings
from racetrack_core.quantities import memory_bytes, millicores
from racetrack_plugins.k8s_infra.image_registry import RegistrySettings

WHERE = "targets.kubernetes"
AUTH_MODES = ("auto", "in-cluster", "kubeconfig")
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
#: The labels of Racetrack's own pods, as ``deploy/kubernetes`` sets them.
PUB_POD_LABELS = {"app.kubernetes.io/name": "racetrack", "app.kubernetes.io/component": "pub"}
LIFECYCLE_POD_LABELS = {
    "app.kubernetes.io/name": "racetrack",
    "app.kubernetes.io/component": "lifecycle",
}


@dataclass(frozen=True)
class Resources:
    """Requests and limits of a job's container: memory in bytes, CPU in millicores."""

    memory_request: int
    memory_limit: int
    cpu_request: int
    cpu_limit: int


@dataclass(frozen=True)
class KubernetesSettings:
    """How the Kubernetes target reaches the cluster and shapes each job's objects.

    Reaching the API: ``auth`` is ``in-cluster`` (the pod's service account), ``kubeconfig``
    (the file ``kubeconfig``, else ``KUBECONFIG``, else ``~/.kube/config``; its ``context``, else
    the current one) or ``auto`` (in-cluster when the service-account files exist, else the
    kubeconfig). ``namespace`` is where job objects live; ``owner`` is written in the label
    ``racetrack.io/owner`` of every object, so that two Racetrack installations sharing a
    namespace leave each other's jobs alone.

    Shaping jobs: ``memory_*``/``cpu_*`` are the requests and limits a job gets when its
    manifest's ``resources`` leave them out (``*_request``/``*_limit``) and the most it may ask
    for (``*_cap``). ``image_pull_secret`` names a Secret of the namespace the kubelet pulls
    images with. ``job_port`` is the port the job listens on in its pod (``JOB_PORT``).
    ``termination_grace_seconds`` is how long a stopping pod may finish its calls.
    ``startup_seconds`` is how long a job may take to answer ``/live`` before the kubelet
    restarts it. ``max_surge`` is how many extra pods a rolling update may start (never fewer
    ready pods than asked: ``maxUnavailable`` is 0). ``pub_pod_labels`` and
    ``lifecycle_pod_labels`` select the pods the NetworkPolicy admits: Pub's, which call jobs,
    and Lifecycle's, which probe ``/live`` and ``/ready`` while deploying; they run in
    ``callers_namespace`` (None: the jobs' own namespace). ``crash_limit``:
    restarts after which a crash-looping job is reported as an error. ``cluster_domain``:
    the cluster's DNS domain, part of each job's Service address. ``registry``: where built
    images are pushed (``image_registry.RegistrySettings``; None: pods use the builder's local
    tag, which only a node sharing the builder's engine can run).
    """

    namespace: str = "racetrack"
    owner: str = "racetrack"
    auth: str = "auto"
    kubeconfig: str | None = None
    context: str | None = None
    service_account_dir: str = SERVICE_ACCOUNT_DIR
    image_pull_secret: str | None = None
    job_port: int = 7000
    memory_request: int = 256 * 1024**2
    memory_limit: int = 512 * 1024**2
    memory_cap: int = 4 * 1024**3
    cpu_request: int = 100
    cpu_limit: int = 1000
    cpu_cap: int = 4000
    termination_grace_seconds: int = 30
    startup_seconds: int = 300
    max_surge: int | str = "25%"
    crash_limit: int = 3
    cluster_domain: str = "cluster.local"
    callers_namespace: str | None = None
    pub_pod_labels: Mapping[str, str] = field(default_factory=lambda: dict(PUB_POD_LABELS))
    lifecycle_pod_labels: Mapping[str, str] = field(
        default_factory=lambda: dict(LIFECYCLE_POD_LABELS)
    )
    registry: RegistrySettings | None = None
    build: BuilderSettings = field(default_factory=BuilderSettings)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> KubernetesSettings:
        """Settings from a mapping; an unknown name or a wrong value names the setting."""
        chosen: dict[str, Any] = {}
        for name, value in values.items():
            where = f"config.yaml, {WHERE}.{name}"
            if name == "build":
                if not isinstance(value, Mapping):
                    raise RacetrackError(f"{where}: give a mapping")
                chosen[name] = BuilderSettings.from_mapping(value, f"{WHERE}.build")
            elif name == "registry":
                if not isinstance(value, Mapping):
                    raise RacetrackError(f"{where}: give a mapping with an address")
                chosen[name] = RegistrySettings.from_mapping(value)
            elif name in _QUANTITIES:
                chosen[name] = _QUANTITIES[name](value, where)
            elif name in ("pub_pod_labels", "lifecycle_pod_labels"):
                chosen[name] = _labels(value, where)
            elif name in _KINDS:
                chosen[name] = _checked(value, _KINDS[name], where)
            else:
                known = sorted([*_KINDS, *_QUANTITIES, "build", "registry", "pub_pod_labels"])
                raise RacetrackError(
                    f"config.yaml, {WHERE}: unknown setting {name!r}. Known: "
                    f"{', '.join([*known, 'lifecycle_pod_labels'])}"
                )
        settings = cls(**chosen)
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse settings that contradict each other, naming them."""
        if self.auth not in AUTH_MODES:
            raise RacetrackError(
                f"config.yaml, {WHERE}.auth: {self.auth!r} is not one of {', '.join(AUTH_MODES)}"
            )
        for what in ("memory", "cpu"):
            request, limit, cap = (getattr(self, f"{what}_{end}") for end in _ENDS)
            if not request <= limit <= cap:
                raise RacetrackError(
                    f"config.yaml, {WHERE}: {what}_request must not exceed {what}_limit, nor "
                    f"{what}_limit {what}_cap"
                )
        if not 1 <= self.job_port <= 65535:
            raise RacetrackError(f"config.yaml, {WHERE}.job_port: {self.job_port} is no port")

    def resources(self, manifest: Mapping[str, Any] | None) -> Resources:
        """The requests and limits for a manifest's ``resources``: its ``*_min`` as requests
        and ``*_max`` as limits, else the defaults; never above the caps, and a request never
        above its limit."""
        asked = manifest or {}
        where = "manifest field 'resources'"
        memory_limit = _asked(asked, "memory_max", memory_bytes, where, self.memory_limit)
        memory_request = _asked(asked, "memory_min", memory_bytes, where, self.memory_request)
        cpu_limit = _asked(asked, "cpu_max", millicores, where, self.cpu_limit)
        cpu_request = _asked(asked, "cpu_min", millicores, where, self.cpu_request)
        memory_limit = min(max(memory_limit, memory_request), self.memory_cap)
        cpu_limit = min(max(cpu_limit, cpu_request), self.cpu_cap)
        return Resources(
            memory_request=min(memory_request, memory_limit),
            memory_limit=memory_limit,
            cpu_request=min(cpu_request, cpu_limit),
            cpu_limit=cpu_limit,
        )


_ENDS = ("request", "limit", "cap")
_QUANTITIES = {f"memory_{end}": memory_bytes for end in _ENDS} | {
    f"cpu_{end}": millicores for end in _ENDS
}
_KINDS: dict[str, type | tuple[type, ...]] = {
    "namespace": str,
    "owner": str,
    "auth": str,
    "kubeconfig": str,
    "context": str,
    "service_account_dir": str,
    "image_pull_secret": str,
    "job_port": int,
    "termination_grace_seconds": int,
    "startup_seconds": int,
    "max_surge": (int, str),
    "crash_limit": int,
    "cluster_domain": str,
    "callers_namespace": str,
}


def _checked(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, kind):
        raise RacetrackError(f"{where}: {value!r} is not a valid value")
    if isinstance(value, int) and value < 0:
        raise RacetrackError(f"{where}: {value!r} must not be negative")
    return value


def _labels(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or not value:
        raise RacetrackError(f"{where}: give a mapping of pod labels, like {PUB_POD_LABELS}")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise RacetrackError(f"{where}: label names and values must be strings")
    return dict(value)


def _asked(resources: Mapping[str, Any], key: str, parse: Any, where: str, default: int) -> int:
    value = resources.get(key)
    return default if value is None else int(parse(value, f"{where}.{key}"))
