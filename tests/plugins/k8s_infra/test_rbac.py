"""``deploy/kubernetes/base/rbac.yaml`` grants the target exactly what its driver uses.

The driver goes through a deployment's whole life against the emulator (start, redeploy,
rollback, retire, status, logs, follow, delete); every request it sent is turned into the
(API group, resource, verb) that Kubernetes' authorizer would check, and the Role must allow
each of them and grant nothing that none of them needed.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from ruamel.yaml import YAML

from racetrack_plugins.k8s_infra import KubernetesDriver

from .conftest import NAMESPACE, job_spec
from .emulator import RunningEmulator
from .test_driver import D2, add_pod

BASE = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes" / "base"
RBAC = BASE / "rbac.yaml"
ACCOUNTS = BASE / "serviceaccounts.yaml"
_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)/namespaces/[^/]+/(?P<resource>[^/]+)"
    r"(?:/(?P<name>[^/]+)(?:/(?P<subresource>[^/]+))?)?$"
)
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def documents(path: Path = RBAC) -> list[dict[str, Any]]:
    return [doc for doc in YAML(typ="safe").load_all(path.read_text()) if doc]


def granted() -> set[tuple[str, str, str]]:
    [role] = [doc for doc in documents() if doc["kind"] == "Role"]
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def authorized_as(method: str, path: str, params: dict[str, str]) -> tuple[str, str, str]:
    """The (group, resource, verb) Kubernetes checks for one request."""
    found = _PATH.match(path)
    assert found, path
    resource = found["resource"]
    if found["subresource"]:
        resource += "/" + found["subresource"]
    if method == "GET":
        verb = "get" if found["name"] else ("watch" if params.get("watch") else "list")
    else:
        verb = _VERBS[method]
    return (found["group"] or "", resource, verb)


def exercise(driver: KubernetesDriver, emulator: RunningEmulator, tmp_path: Path) -> None:
    first = driver.start(job_spec(tmp_path))
    second = driver.start(job_spec(tmp_path, deployment_id=D2))
    driver.retire(first)
    driver.stop(driver.start(job_spec(tmp_path, deployment_id="d3" + "0" * 30)))
    add_pod(driver, "primer-a", D2)
    path = f"/api/v1/namespaces/{NAMESPACE}/pods/primer-a/log"
    emulator.call(lambda handler: handler["get", path] << b"one\n")
    driver.replicas()
    driver.logs("primer", "1.0.0", tail=5)
    stop = threading.Event()
    for _ in driver.follow_logs("primer", "1.0.0", stop=stop):
        stop.set()
    driver.restore(job_spec(tmp_path, deployment_id=D2), second)
    driver.delete("primer", "1.0.0")


@pytest.mark.parametrize("version", ["1.25", "1.37"])
def test_the_rbac_objects_are_valid(version: str) -> None:
    for doc in documents():
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_role_grants_exactly_what_the_driver_uses(
    driver: KubernetesDriver, emulator: RunningEmulator, tmp_path: Path
) -> None:
    exercise(driver, emulator, tmp_path)
    used = {
        authorized_as(request.method.value, request.url.path, dict(request.params))
        for request in emulator.requests()
        # The test's own writes (pods, as a kubelet would) are not the driver's.
        if not (request.method.value == "POST" and request.url.path.endswith("/pods"))
    }
    assert used - granted() == set(), "the driver needs more than the Role grants"
    assert granted() - used == set(), "the Role grants what the driver never uses"


def test_the_binding_gives_the_role_to_lifecycles_service_account() -> None:
    kinds = {doc["kind"]: doc for doc in documents()}
    binding = kinds["RoleBinding"]
    assert binding["roleRef"]["name"] == kinds["Role"]["metadata"]["name"]
    [subject] = binding["subjects"]
    accounts = {doc["metadata"]["name"]: doc for doc in documents(ACCOUNTS)}
    assert subject["name"] == "racetrack-lifecycle"
    assert accounts[subject["name"]]["automountServiceAccountToken"] is True
    assert all(
        doc["automountServiceAccountToken"] is False
        for name, doc in accounts.items()
        if name != subject["name"]
    )
