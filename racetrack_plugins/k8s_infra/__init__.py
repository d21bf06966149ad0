"""The ``kubernetes`` infrastructure target: jobs as Deployments on a Kubernetes cluster.

It accepts image recipes, built by the one image builder (``racetrack_core.images``) and
pushed to a registry the cluster pulls from. Each job version is a Deployment, a Service, a
NetworkPolicy and a Secret per deployment (``objects``), driven through lightkube
(``driver``). See ``docs/infrastructure/kubernetes.md``.
"""

from __future__ import annotations

from racetrack_core import hookimpl
from racetrack_core.recipes import ArtifactKind
from racetrack_core.registry import InfrastructureRegistrar
from racetrack_plugins.k8s_infra.driver import KubernetesDriver
from racetrack_plugins.k8s_infra.settings import KubernetesSettings

__all__ = ["KubernetesDriver", "KubernetesSettings"]

DESCRIPTION = (
    "Jobs as Deployments on a Kubernetes cluster (a Service each, reached from Pub only; "
    "images pushed to a registry)"
)


@hookimpl
def register_infrastructure_targets(registry: InfrastructureRegistrar) -> None:
    """Register the ``kubernetes`` target, whose driver is a ``KubernetesDriver``."""
    registry.register(
        "kubernetes", KubernetesDriver, accepts={ArtifactKind.IMAGE}, description=DESCRIPTION
    )
