"""The Kubernetes objects one job version is made of, rendered as plain dictionaries.

Pure functions of a ``Release`` (one deployment of a job version) and the target's settings:
nothing here talks to a cluster, so every object can be validated offline against the API's
schemas (``tests/plugins/k8s_infra/test_objects.py``). Per job version:

- a **Deployment**: ``replicas`` pods from the manifest; requests and limits from the
  manifest's ``resources`` within the settings' caps; a startup and a liveness probe on
  ``/live`` and a readiness probe on ``/ready``; pods spread across nodes; a rolling update
  that never has fewer ready pods than asked (``maxUnavailable: 0``), so a new deployment takes
  traffic only once a new pod is ready; no service-account token in the pods;
- a **Service** in front of the pods, the address Pub calls;
- a **Secret** per deployment holding the job's whole runtime environment (the pipeline's
  environment mixes plain variables with the family token and runtime secrets, so all of it
  goes in the Secret and none in the Deployment);
- a **NetworkPolicy** admitting traffic to the pods only from Pub's pods (and Lifecycle's, which
  probe ``/live`` and ``/ready``).

An image that asks for a network wrapper (the docker-proxy job type's) gets a second container
in its pods, ``proxy``: the same image running its ``racetrack.pod-proxy`` command, which serves
the job's port and answers the probes, in front of the image's own server on the pod's
loopback. The pod is the private network that the Docker target makes with namespaces, so no
system call beyond the runtime's default profile is needed.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from racetrack_core.infrastructure import DeployError
from racetrack_core.quantities import cpu_quantity, memory_quantity
from racetrack_plugins.k8s_infra import names
from racetrack_plugins.k8s_infra.settings import KubernetesSettings, Resources

CONTAINER = "job"
PROXY_CONTAINER = "proxy"
#: What the ``proxy`` container of a wrapped job may use (a small static Go binary).
PROXY_MEMORY = ("32Mi", "128Mi")
PROXY_CPU = ("20m", "500m")
PORT_NAME = "http"
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")
#: How often the startup probe asks ``/live`` (seconds).
STARTUP_PERIOD = 2


@dataclass(frozen=True)
class Release:
    """One deployment of a job version, as its objects need it."""

    name: str
    version: str
    deployment_id: str
    deployment_timestamp: int
    image: str
    replicas: int
    resources: Resources
    #: The command of the ``proxy`` container serving in front of the image's own server
    #: (the image's ``racetrack.pod-proxy`` label); empty: the job's container serves alone.
    pod_proxy: tuple[str, ...] = ()

    @property
    def object_name(self) -> str:
        return names.object_name(self.name, self.version)

    @property
    def secret_name(self) -> str:
        return names.secret_name(self.name, self.version, self.deployment_id)

    @property
    def replica_id(self) -> str:
        return names.replica_id(self.name, self.version, self.deployment_id)


def metadata(
    name: str, job: str, version: str, settings: KubernetesSettings, **extra: Any
) -> dict[str, Any]:
    """``metadata`` of a job version's object: its name, namespace, labels and annotations."""
    return {
        "name": name,
        "namespace": settings.namespace,
        "labels": {**names.labels(settings.owner, job, version), **extra.pop("labels", {})},
        "annotations": {
            names.ANNOTATION_JOB: job,
            names.ANNOTATION_VERSION: version,
            **extra.pop("annotations", {}),
        },
        **extra,
    }


def deployment(release: Release, settings: KubernetesSettings) -> dict[str, Any]:
    """The Deployment that runs ``release``'s pods."""
    selector = names.selector(settings.owner, release.name, release.version)
    described = {
        names.ANNOTATION_DEPLOYMENT: release.deployment_id,
        names.ANNOTATION_TIMESTAMP: str(release.deployment_timestamp),
        names.ANNOTATION_REPLICA: release.replica_id,
        names.ANNOTATION_SECRET: release.secret_name,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(
            release.object_name, release.name, release.version, settings, annotations=described
        ),
        "spec": {
            "replicas": release.replicas,
            "revisionHistoryLimit": 2,
            # Past this, the Deployment's Progressing condition turns False: a stuck rollout.
            "progressDeadlineSeconds": settings.startup_seconds + 60,
            "selector": {"matchLabels": selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": settings.max_surge},
            },
            "template": {
                "metadata": {
                    "labels": {
                        **names.labels(settings.owner, release.name, release.version),
                        names.LABEL_DEPLOYMENT: names.label_value(release.deployment_id),
                    },
                    "annotations": described,
                },
                "spec": pod_spec(release, settings, selector),
            },
        },
    }


def pod_spec(
    release: Release, settings: KubernetesSettings, selector: Mapping[str, str]
) -> dict[str, Any]:
    """The pods of ``release``: the job's container (and its proxy when the image asks for
    one), no API token, spread across nodes."""
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": settings.termination_grace_seconds,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": dict(selector)},
            }
        ],
        "containers": [container(release, settings)],
    }
    if release.pod_proxy:
        spec["containers"].append(proxy_container(release, settings))
    if settings.image_pull_secret:
        spec["imagePullSecrets"] = [{"name": settings.image_pull_secret}]
    return spec


def container(release: Release, settings: KubernetesSettings) -> dict[str, Any]:
    """The job's container: its image, environment and resources; and, unless a proxy serves
    in front of it, the job's port and the probes."""
    resources = release.resources
    job: dict[str, Any] = {
        "name": CONTAINER,
        "image": release.image,
        "imagePullPolicy": "IfNotPresent",
        "env": [_pod_name()],
        "envFrom": [{"secretRef": {"name": release.secret_name}}],
        "resources": {
            "requests": {
                "memory": memory_quantity(resources.memory_request),
                "cpu": cpu_quantity(resources.cpu_request),
            },
            "limits": {
                "memory": memory_quantity(resources.memory_limit),
                "cpu": cpu_quantity(resources.cpu_limit),
            },
        },
        "securityContext": _security(),
    }
    if release.pod_proxy:
        # The image's own server listens on its own port (JOB_USER_MODULE_PORT, set in the
        # image): JOB_PORT is the proxy's, in the network namespace they share.
        return job
    return {**job, **_serving(settings), "env": [*_listening(settings), _pod_name()]}


def proxy_container(release: Release, settings: KubernetesSettings) -> dict[str, Any]:
    """The ``proxy`` container of a wrapped image: the same image running ``pod_proxy``, on
    the job's port, answering the probes. It gets the job's identity, not its Secret: it needs
    no runtime secret."""
    identity = {
        "JOB_NAME": release.name,
        "JOB_VERSION": release.version,
        "JOB_DEPLOYMENT_TIMESTAMP": str(release.deployment_timestamp),
    }
    return {
        "name": PROXY_CONTAINER,
        "image": release.image,
        "imagePullPolicy": "IfNotPresent",
        "command": list(release.pod_proxy),
        "env": [
            *_listening(settings),
            *({"name": key, "value": value} for key, value in identity.items()),
            _pod_name(),
        ],
        "resources": {
            "requests": {"memory": PROXY_MEMORY[0], "cpu": PROXY_CPU[0]},
            "limits": {"memory": PROXY_MEMORY[1], "cpu": PROXY_CPU[1]},
        },
        **_serving(settings),
        "securityContext": _security(),
    }


def _pod_name() -> dict[str, Any]:
    return {"name": "JOB_REPLICA", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}


def _security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }


def _listening(settings: KubernetesSettings) -> list[dict[str, Any]]:
    return [
        {"name": "JOB_PORT", "value": str(settings.job_port)},
        # The pod's own address: the Service, Pub and the probes reach it there, and the
        # NetworkPolicy admits only Pub and Lifecycle.
        {"name": "JOB_HOST", "value": "0.0.0.0"},  # noqa: S104
    ]


def _serving(settings: KubernetesSettings) -> dict[str, Any]:
    """The port and probes of the container that serves the job's port."""
    return {
        "ports": [{"name": PORT_NAME, "containerPort": settings.job_port, "protocol": "TCP"}],
        "startupProbe": _probe(
            "/live", STARTUP_PERIOD, math.ceil(settings.startup_seconds / STARTUP_PERIOD)
        ),
        "livenessProbe": _probe("/live", 10, 3),
        "readinessProbe": _probe("/ready", 5, 2),
    }


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": PORT_NAME, "scheme": "HTTP"},
        "periodSeconds": period,
        "timeoutSeconds": min(period, 5),
        "failureThreshold": max(1, failures),
    }


def service(release: Release, settings: KubernetesSettings) -> dict[str, Any]:
    """The Service in front of ``release``'s pods (the address Pub calls)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(release.object_name, release.name, release.version, settings),
        "spec": {
            "type": "ClusterIP",
            "selector": names.selector(settings.owner, release.name, release.version),
            "ports": [
                {
                    "name": PORT_NAME,
                    "port": settings.job_port,
                    "targetPort": PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }


def secret(
    release: Release, environment: Mapping[str, str], settings: KubernetesSettings
) -> dict[str, Any]:
    """The Secret holding ``release``'s runtime environment; DeployError naming a variable
    whose name a Secret cannot hold (the value is never shown)."""
    for key in environment:
        if not _SECRET_KEY.fullmatch(key):
            raise DeployError(
                f"runtime variable {key!r} cannot be given to a Kubernetes pod: use letters, "
                "digits, '_', '-' and '.' in variable names"
            )
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "immutable": True,
        "metadata": metadata(
            release.secret_name,
            release.name,
            release.version,
            settings,
            labels={names.LABEL_DEPLOYMENT: names.label_value(release.deployment_id)},
            annotations={names.ANNOTATION_DEPLOYMENT: release.deployment_id},
        ),
        "data": {
            key: base64.b64encode(value.encode()).decode() for key, value in environment.items()
        },
    }


def network_policy(release: Release, settings: KubernetesSettings) -> dict[str, Any]:
    """The NetworkPolicy admitting traffic to ``release``'s pods from Pub and Lifecycle only,
    on the job's port. Without ``callers_namespace`` the pod selectors match pods of the jobs'
    own namespace; with it, pods of that namespace."""
    callers: list[dict[str, Any]] = [
        {"podSelector": {"matchLabels": dict(labels)}}
        for labels in (settings.pub_pod_labels, settings.lifecycle_pod_labels)
    ]
    if settings.callers_namespace:
        where = {"kubernetes.io/metadata.name": settings.callers_namespace}
        callers = [{**peer, "namespaceSelector": {"matchLabels": where}} for peer in callers]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(release.object_name, release.name, release.version, settings),
        "spec": {
            "podSelector": {
                "matchLabels": names.selector(settings.owner, release.name, release.version)
            },
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": callers,
                    "ports": [{"protocol": "TCP", "port": settings.job_port}],
                }
            ],
        },
    }


def service_url(release_name: str, settings: KubernetesSettings) -> str:
    """The base URL of a job version's Service inside the cluster."""
    host = f"{release_name}.{settings.namespace}.svc.{settings.cluster_domain}"
    return f"http://{host}:{settings.job_port}"


def render(
    release: Release, environment: Mapping[str, str], settings: KubernetesSettings
) -> list[dict[str, Any]]:
    """Every object of ``release``, in the order they are created: the Secret before the
    Deployment whose pods read it."""
    return [
        secret(release, environment, settings),
        service(release, settings),
        network_policy(release, settings),
        deployment(release, settings),
    ]
