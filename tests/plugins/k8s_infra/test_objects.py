"""The Kubernetes target's objects, rendered offline and validated against the API's schemas.

Every object is checked with ``kubernetes-validate`` in strict mode (an unknown or misspelt
field fails) for the oldest and the newest Kubernetes version the target supports, then its
meaning is asserted: probes, rolling update, resources, secrets, the network policy.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import kubernetes_validate
import pytest

from racetrack_core.infrastructure import DeployError
from racetrack_plugins.k8s_infra import names, objects
from racetrack_plugins.k8s_infra.objects import Release
from racetrack_plugins.k8s_infra.settings import KubernetesSettings

#: The Kubernetes versions the target supports (docs/infrastructure/kubernetes.md).
OLDEST, NEWEST = "1.25", "1.37"
DNS_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
ENVIRONMENT = {"JOB_NAME": "primer", "AUTH_TOKEN": "family-token-1", "API_KEY": "s3cret"}


def release(**changes: Any) -> Release:
    settings = KubernetesSettings()
    fields: dict[str, Any] = {
        "name": "primer",
        "version": "1.2.3",
        "deployment_id": "0123456789abcdef0123456789abcdef",
        "deployment_timestamp": 1_700_000_000,
        "image": "registry.test/racetrack-job/primer@sha256:" + "a" * 64,
        "replicas": 3,
        "resources": settings.resources({"memory_max": "1Gi", "cpu_min": "250m"}),
        **changes,
    }
    return Release(**fields)


def rendered(settings: KubernetesSettings | None = None, **changes: Any) -> dict[str, Any]:
    chosen = settings or KubernetesSettings(image_pull_secret="registry-login")
    return {obj["kind"]: obj for obj in objects.render(release(**changes), ENVIRONMENT, chosen)}


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
@pytest.mark.parametrize("kind", ["Deployment", "Service", "Secret", "NetworkPolicy"])
def test_every_object_is_valid_in_strict_mode(kind: str, version: str) -> None:
    for settings in (
        KubernetesSettings(image_pull_secret="registry-login"),
        KubernetesSettings(callers_namespace="racetrack-system", max_surge=1),
    ):
        obj = rendered(settings)[kind]
        assert kubernetes_validate.validate(obj, version, strict=True) == version


def test_strict_validation_catches_a_misspelt_field() -> None:
    """The check above means something: a typo in a probe fails it."""
    deployment = rendered()["Deployment"]
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe["periodSecond"] = probe.pop("periodSeconds")
    with pytest.raises(kubernetes_validate.ValidationError, match="periodSecond"):
        kubernetes_validate.validate(deployment, NEWEST, strict=True)


def test_names_and_labels_are_valid_for_any_version() -> None:
    for version in ("1.2.3", "1.0.0-rc.1+build.7", "10.20.30-" + "x" * 50):
        objs = objects.render(release(version=version), ENVIRONMENT, KubernetesSettings())
        for obj in objs:
            assert DNS_1035.fullmatch(obj["metadata"]["name"]), obj["metadata"]["name"]
            assert len(obj["metadata"]["name"]) <= 63
            for value in obj["metadata"]["labels"].values():
                assert LABEL_VALUE.fullmatch(value), value
                assert len(value) <= 63
        assert objs[0]["metadata"]["annotations"][names.ANNOTATION_VERSION] == version
    assert names.object_name("primer", "1.2.3") == "job-primer-1-2-3"
    # Versions that read alike once made DNS-safe still get objects of their own.
    assert names.object_name("a", "1.0.0-a.b") != names.object_name("a", "1.0.0-a-b")


def test_the_deployment_rolls_out_without_losing_a_ready_pod() -> None:
    deployment = rendered()["Deployment"]
    spec = deployment["spec"]
    assert spec["replicas"] == 3
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
    }
    pod = spec["template"]["spec"]
    [container] = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/live"
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] == "/live"
    # A slow start is given startup_seconds before the kubelet restarts it.
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
    assert spec["selector"]["matchLabels"] == names.selector("racetrack", "primer", "1.2.3")
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    assert pod["topologySpreadConstraints"][0]["labelSelector"] == spec["selector"]
    # A new deployment changes the pod template, so the cluster rolls it out.
    other = rendered(deployment_id="fedcba9876543210fedcba9876543210")["Deployment"]
    assert other["spec"]["template"] != spec["template"]
    assert other["spec"]["selector"] == spec["selector"]


def test_pods_get_no_api_token_and_no_privileges() -> None:
    pod = rendered()["Deployment"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["terminationGracePeriodSeconds"] == 30
    env = {item["name"]: item.get("value") for item in pod["containers"][0]["env"]}
    assert env["JOB_HOST"] == "0.0.0.0"  # noqa: S104 - the pod address the Service reaches
    assert env["JOB_PORT"] == "7000"
    assert pod["imagePullSecrets"] == [{"name": "registry-login"}]
    context = pod["containers"][0]["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert (
        "imagePullSecrets"
        not in rendered(KubernetesSettings())["Deployment"]["spec"]["template"]["spec"]
    )


def test_secrets_stay_in_the_secret() -> None:
    objs = rendered()
    secret = objs["Secret"]
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == ENVIRONMENT
    assert secret["immutable"] is True
    container = objs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    for kind in ("Deployment", "Service", "NetworkPolicy"):
        text = json.dumps(objs[kind])
        assert "s3cret" not in text
        assert "family-token-1" not in text


def test_a_variable_a_secret_cannot_hold_is_named_without_its_value() -> None:
    with pytest.raises(DeployError, match="runtime variable 'MY VAR'") as raised:
        objects.secret(release(), {"MY VAR": "hidden-value"}, KubernetesSettings())
    assert "hidden-value" not in str(raised.value)


def test_only_pub_and_lifecycle_pods_reach_the_job() -> None:
    policy = rendered()["NetworkPolicy"]["spec"]
    assert policy["podSelector"]["matchLabels"] == names.selector("racetrack", "primer", "1.2.3")
    assert policy["policyTypes"] == ["Ingress"]
    [rule] = policy["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 7000}]
    assert [peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for peer in
            rule["from"]] == ["pub", "lifecycle"]  # fmt: skip
    assert all("namespaceSelector" not in peer for peer in rule["from"])
    elsewhere = rendered(KubernetesSettings(callers_namespace="racetrack-system"))
    peers = elsewhere["NetworkPolicy"]["spec"]["ingress"][0]["from"]
    assert all(
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        == "racetrack-system"
        for peer in peers
    )


def test_the_service_selects_the_job_versions_pods() -> None:
    objs = rendered()
    service = objs["Service"]["spec"]
    assert service["selector"] == objs["Deployment"]["spec"]["selector"]["matchLabels"]
    assert service["ports"][0]["port"] == 7000
    assert service["ports"][0]["targetPort"] == objects.PORT_NAME
    url = objects.service_url("job-primer-1-2-3", KubernetesSettings(namespace="jobs"))
    assert url == "http://job-primer-1-2-3.jobs.svc.cluster.local:7000"


def test_resources_come_from_the_manifest_within_the_caps() -> None:
    settings = KubernetesSettings.from_mapping(
        {"memory_request": "128Mi", "memory_limit": "256Mi", "memory_cap": "1Gi", "cpu_cap": 2}
    )
    defaults = settings.resources(None)
    assert (defaults.memory_request, defaults.memory_limit) == (128 * 1024**2, 256 * 1024**2)
    assert (defaults.cpu_request, defaults.cpu_limit) == (100, 1000)
    asked = settings.resources({"memory_min": "64Mi", "memory_max": "8Gi", "cpu_max": 16})
    assert (asked.memory_request, asked.memory_limit) == (64 * 1024**2, 1024**3)
    assert asked.cpu_limit == 2000
    # A request above the cap is brought down to the limit, never above it.
    greedy = settings.resources({"memory_min": "2Gi", "cpu_min": "3"})
    assert greedy.memory_request == greedy.memory_limit == 1024**3
    assert greedy.cpu_request == greedy.cpu_limit == 2000
    container = objects.container(release(resources=asked), settings)
    assert container["resources"] == {
        "requests": {"memory": "64Mi", "cpu": "100m"},
        "limits": {"memory": "1Gi", "cpu": "2"},
    }
