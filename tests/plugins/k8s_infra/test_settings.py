"""The Kubernetes target's settings: quantities, defaults, and errors naming the setting."""

from __future__ import annotations

import pytest

from racetrack_core.errors import RacetrackError
from racetrack_core.quantities import (
    cpu_quantity,
    memory_bytes,
    memory_quantity,
    millicores,
)
from racetrack_plugins.k8s_infra.settings import KubernetesSettings


def test_quantities_read_and_write_as_kubernetes_does() -> None:
    assert memory_bytes("512Mi", "x") == 512 * 1024**2
    assert memory_bytes("1G", "x") == 1000**3
    assert memory_bytes(1000, "x") == 1000
    assert millicores("500m", "x") == 500
    assert millicores(0.25, "x") == 250
    assert millicores("2", "x") == 2000
    assert memory_quantity(512 * 1024**2) == "512Mi"
    assert memory_quantity(2 * 1024**3) == "2Gi"
    assert memory_quantity(1000**3) == "1000000000"
    assert (cpu_quantity(250), cpu_quantity(3000)) == ("250m", "3")


def test_a_wrong_quantity_names_where_it_is() -> None:
    with pytest.raises(RacetrackError, match=r"targets.kubernetes.memory_cap: '4 gigs'"):
        KubernetesSettings.from_mapping({"memory_cap": "4 gigs"})
    with pytest.raises(RacetrackError, match=r"targets.kubernetes.cpu_limit: 'lots'"):
        KubernetesSettings.from_mapping({"cpu_limit": "lots"})
    with pytest.raises(RacetrackError, match=r"manifest field 'resources'.cpu_max: '-1'"):
        KubernetesSettings().resources({"cpu_max": "-1"})


def test_a_wrong_setting_is_named() -> None:
    with pytest.raises(RacetrackError, match=r"targets.kubernetes: unknown setting 'namespce'"):
        KubernetesSettings.from_mapping({"namespce": "jobs"})
    with pytest.raises(RacetrackError, match=r"targets.kubernetes.job_port: 'http'"):
        KubernetesSettings.from_mapping({"job_port": "http"})
    with pytest.raises(RacetrackError, match=r"targets.kubernetes.auth: 'token' is not one of"):
        KubernetesSettings.from_mapping({"auth": "token"})
    with pytest.raises(RacetrackError, match=r"memory_request must not exceed memory_limit"):
        KubernetesSettings.from_mapping({"memory_request": "1Gi", "memory_limit": "512Mi"})
    with pytest.raises(RacetrackError, match=r"targets.kubernetes.pub_pod_labels: give a"):
        KubernetesSettings.from_mapping({"pub_pod_labels": "pub"})
    with pytest.raises(RacetrackError, match=r"targets.kubernetes.build: unknown setting 'cli'"):
        KubernetesSettings.from_mapping({"build": {"cli": "/usr/bin/docker"}})


def test_settings_from_config() -> None:
    settings = KubernetesSettings.from_mapping(
        {
            "namespace": "jobs",
            "owner": "team-a",
            "auth": "kubeconfig",
            "kubeconfig": "/etc/racetrack/kubeconfig",
            "max_surge": 2,
            "pub_pod_labels": {"app": "pub"},
            "build": {"repository": "registry.test/jobs"},
        }
    )
    assert (settings.namespace, settings.owner, settings.max_surge) == ("jobs", "team-a", 2)
    assert settings.pub_pod_labels == {"app": "pub"}
    assert settings.build.repository == "registry.test/jobs"
