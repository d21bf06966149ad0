"""``deploy/kubernetes/``, checked offline: no API server can run here.

Every object of the kustomize base is validated with ``kubernetes-validate`` in strict mode
(a misspelt field fails) against the schemas of the oldest and the newest Kubernetes versions
Racetrack supports. The base is assembled from its kustomization's ``resources``, which must
list every manifest file of the folder; when a ``kubectl`` with kustomize is installed, the
built base and the ``external-postgres`` overlay are validated too. Then what the deployment
promises is asserted on the objects: replicas, rollouts that never drop below the asked number
of ready pods, probes, resources, a non-root read-only container, least-privilege RBAC in the
jobs' namespace only, Services and an Ingress that reach the pods, Lifecycle's replicas sharing
one home (a ReadWriteMany claim) and one ``secret.key`` (from a Secret), and settings that
Racetrack accepts.
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from ruamel.yaml import YAML

from racetrack_core.security import SecretBox, SecretsError
from racetrack_core.settings import Settings

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "deploy" / "kubernetes" / "base"
OVERLAY = REPO / "deploy" / "kubernetes" / "overlays" / "external-postgres"
#: The oldest and the newest Kubernetes versions supported (docs/deployment.md).
VERSIONS = ("1.25.0", "1.37.0")
SERVICES = {"lifecycle": 7102, "pub": 7105, "dashboard": 7103}
JOBS_NAMESPACE = "racetrack-jobs"
CONFIG, SECRETS = "racetrack-config", "racetrack-secrets"
#: Racetrack's home in its image (RACETRACK_HOME, deploy/image/Dockerfile).
HOME = "/var/lib/racetrack"
#: The pod labels the Kubernetes target's NetworkPolicy admits to jobs by default.
PUB_POD_LABELS = {"app.kubernetes.io/name": "racetrack", "app.kubernetes.io/component": "pub"}
LIFECYCLE_POD_LABELS = {**PUB_POD_LABELS, "app.kubernetes.io/component": "lifecycle"}


def _documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in YAML(typ="safe").load_all(text) if doc]


def assembled_base() -> list[dict[str, Any]]:
    """The base's objects, read from the files its kustomization lists, with its labels."""
    kustomization = YAML(typ="safe").load((BASE / "kustomization.yaml").read_text())
    objects = []
    for name in kustomization["resources"]:
        objects += _documents((BASE / name).read_text())
    labels = {k: v for entry in kustomization.get("labels", []) for k, v in entry["pairs"].items()}
    for obj in objects:
        obj["metadata"].setdefault("labels", {}).update(labels)
    return objects


def _kustomize(folder: Path) -> list[dict[str, Any]] | None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    done = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"kubectl kustomize {folder.name} failed: {done.stderr}"
    return _documents(done.stdout)


def _containers(objects: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for obj in objects:
        if obj["kind"] in {"Deployment", "StatefulSet"}:
            for container in obj["spec"]["template"]["spec"]["containers"]:
                yield obj, container


def _by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def test_the_kustomization_lists_every_manifest_of_the_base() -> None:
    listed = set(YAML(typ="safe").load((BASE / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


@pytest.mark.parametrize("version", VERSIONS)
def test_every_object_is_valid_in_strict_mode(version: str) -> None:
    sets = {"base (assembled)": assembled_base()}
    for name, folder in (("base (kustomize)", BASE), ("external-postgres", OVERLAY)):
        built = _kustomize(folder)
        if built is not None:
            sets[name] = built
    for name, objects in sets.items():
        assert len(objects) >= 15, name
        for obj in objects:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{name}: {obj['kind']} {obj['metadata']['name']}: {error}")


def test_a_misspelt_field_fails_validation() -> None:
    """The check above can fail: strict mode refuses a field Kubernetes does not know."""
    [deployment, *_] = _by_kind(assembled_base(), "Deployment")
    deployment["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[0], strict=True)


def test_each_service_runs_as_replicas_that_roll_without_losing_ready_pods() -> None:
    deployments = {d["metadata"]["name"]: d for d in _by_kind(assembled_base(), "Deployment")}
    assert set(deployments) == {f"racetrack-{name}" for name in SERVICES}
    for name, port in SERVICES.items():
        spec = deployments[f"racetrack-{name}"]["spec"]
        assert spec["replicas"] >= 2
        assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        [container] = spec["template"]["spec"]["containers"]
        assert container["image"] == "racetrack/racetrack"
        assert container["args"] == ["serve", name]
        assert container["ports"] == [{"name": "http", "containerPort": port}]
        assert {"name": f"RACETRACK_{name.upper()}_PORT", "value": str(port)} in container["env"]
        assert container["startupProbe"]["httpGet"]["path"] == "/live"
        assert container["livenessProbe"]["httpGet"]["path"] == "/live"
        ready = "/live" if name == "dashboard" else "/ready"
        assert container["readinessProbe"]["httpGet"]["path"] == ready
    pub_labels = deployments["racetrack-pub"]["spec"]["template"]["metadata"]["labels"]
    assert PUB_POD_LABELS.items() <= pub_labels.items()
    budgets = {
        b["metadata"]["name"]: b["spec"] for b in _by_kind(assembled_base(), "PodDisruptionBudget")
    }
    assert set(budgets) == set(deployments)
    for name, budget in budgets.items():
        assert budget["minAvailable"] == 1
        pods = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert budget["selector"]["matchLabels"].items() <= pods.items()


def test_containers_are_unprivileged_and_bounded() -> None:
    checked = 0
    for obj, container in _containers(assembled_base()):
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]), container["name"]
        assert "memory" in resources["limits"], container["name"]
        if obj["kind"] == "Deployment":
            assert context["readOnlyRootFilesystem"] is True
            api_access = pod["serviceAccountName"] == "racetrack-lifecycle"
            assert pod["automountServiceAccountToken"] is api_access
        checked += 1
    assert checked == 4


def test_rbac_allows_the_kubernetes_target_only_its_work_in_the_jobs_namespace() -> None:
    objects = assembled_base()
    assert not _by_kind(objects, "ClusterRole")
    assert not _by_kind(objects, "ClusterRoleBinding")
    [role] = _by_kind(objects, "Role")
    assert role["metadata"]["namespace"] == JOBS_NAMESPACE
    granted: dict[str, set[str]] = {}
    for rule in role["rules"]:
        for resource in rule["resources"]:
            assert "*" not in rule["verbs"]
            assert "*" not in rule["apiGroups"]
            granted[resource] = set(rule["verbs"])
    # Which verbs exactly is checked against the driver's requests in
    # tests/plugins/k8s_infra/test_rbac.py; here: only the kinds the target manages.
    assert set(granted) == {
        "deployments", "services", "secrets", "networkpolicies", "pods", "pods/log"
    }  # fmt: skip
    assert granted["pods"] <= {"get", "list"}
    assert granted["pods/log"] == {"get"}
    [binding] = _by_kind(objects, "RoleBinding")
    assert binding["metadata"]["namespace"] == JOBS_NAMESPACE
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "racetrack-lifecycle", "namespace": "racetrack"}
    ]


def test_services_and_the_ingress_reach_the_pods() -> None:
    objects = assembled_base()
    pods = [obj["spec"]["template"]["metadata"]["labels"] for obj, _ in _containers(objects)]
    services = {s["metadata"]["name"]: s for s in _by_kind(objects, "Service")}
    for service in services.values():
        selector = service["spec"]["selector"]
        assert any(selector.items() <= labels.items() for labels in pods), service
    [ingress] = _by_kind(objects, "Ingress")
    routes = {
        path["path"]: path["backend"]["service"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert set(routes) == {f"/{name}" for name in SERVICES}
    for path, backend in routes.items():
        service = services[backend["name"]]
        assert backend["name"] == f"racetrack{path.replace('/', '-')}"
        assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}


def test_the_config_and_secrets_are_settings_racetrack_accepts(tmp_path: Path) -> None:
    objects = assembled_base()
    [config] = [c for c in _by_kind(objects, "ConfigMap") if c["metadata"]["name"] == CONFIG]
    [secret] = [s for s in _by_kind(objects, "Secret") if s["metadata"]["name"] == SECRETS]
    environ = {k: v for k, v in config["data"].items() if k.startswith("RACETRACK_")}
    environ.update(secret["stringData"])
    assert set(config["data"]) - set(environ) == {"config.yaml"}
    (tmp_path / "config.yaml").write_text(config["data"]["config.yaml"])
    settings = Settings.load({"home": str(tmp_path)}, environ=environ)
    assert settings.infrastructure_target == "kubernetes"
    assert settings.targets["kubernetes"]["namespace"] == JOBS_NAMESPACE
    assert settings.internal_lifecycle_url == "http://racetrack-lifecycle:7102/lifecycle"
    assert settings.database_url.startswith("postgresql://")
    # The trusted proxy the ConfigMap shows (commented) for the Ingress is a setting too.
    [shown] = [
        line.split("#", 1)[1].strip()
        for line in (BASE / "config.yaml").read_text().splitlines()
        if line.strip().startswith("# RACETRACK_TRUSTED_PROXIES:")
    ]
    proxies = YAML(typ="safe").load(shown)
    trusted = Settings.load({"home": str(tmp_path)}, environ={**environ, **proxies})
    assert trusted.trusted_proxies == proxies["RACETRACK_TRUSTED_PROXIES"] != ""
    for obj, container in _containers(objects):
        if obj["kind"] == "Deployment":
            sources = {next(iter(s.values()))["name"] for s in container["envFrom"]}
            assert sources == {"racetrack-config", "racetrack-secrets"}


def test_the_kubernetes_target_accepts_its_settings_and_finds_the_callers_pods() -> None:
    """Checked against the Kubernetes target's own settings parser and default pod labels
    where the target (``racetrack_plugins.k8s_infra``) is installed; the pod labels are
    checked against the documented defaults in any case."""
    objects = assembled_base()
    [config] = [c for c in _by_kind(objects, "ConfigMap") if c["metadata"]["name"] == CONFIG]
    target = YAML(typ="safe").load(config["data"]["config.yaml"])["targets"]["kubernetes"]
    templates = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
        for d in _by_kind(objects, "Deployment")
    }
    expected = {"pub": PUB_POD_LABELS, "lifecycle": LIFECYCLE_POD_LABELS}
    if importlib.util.find_spec("racetrack_plugins.k8s_infra") is not None:
        module = importlib.import_module("racetrack_plugins.k8s_infra.settings")
        parsed = module.KubernetesSettings.from_mapping(target)
        assert parsed.namespace == JOBS_NAMESPACE
        assert parsed.callers_namespace == "racetrack"
        expected = {"pub": module.PUB_POD_LABELS, "lifecycle": module.LIFECYCLE_POD_LABELS}
    for component, labels in expected.items():
        assert labels.items() <= templates[f"racetrack-{component}"].items(), component


def _lifecycle_home(objects: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Lifecycle's pod spec and its container's mounts by path."""
    [deployment] = [
        d for d in _by_kind(objects, "Deployment") if "lifecycle" in d["metadata"]["name"]
    ]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    return pod, {m["mountPath"]: m for m in container["volumeMounts"]}


@pytest.mark.parametrize("which", ["base (assembled)", "base (kustomize)", "external-postgres"])
def test_lifecycle_replicas_share_one_home_and_one_secret_key(which: str) -> None:
    """Replicas share the home (job sources, the first-start lock) on a ReadWriteMany claim,
    with no storage class chosen for the operator, and ``secret.key`` from one Secret; a
    per-pod ``emptyDir`` would lose job sources and sealed secrets on every restart."""
    objects = assembled_base() if which == "base (assembled)" else None
    if objects is None:
        objects = _kustomize(BASE if which == "base (kustomize)" else OVERLAY)
        if objects is None:
            pytest.skip("kubectl (with kustomize) is not installed")
    pod, mounts = _lifecycle_home(objects)
    volumes = {v["name"]: v for v in pod["volumes"]}
    home = volumes[mounts[HOME]["name"]]
    assert "emptyDir" not in home
    claims = {c["metadata"]["name"]: c for c in _by_kind(objects, "PersistentVolumeClaim")}
    claim = claims[home["persistentVolumeClaim"]["claimName"]]
    assert claim["metadata"]["namespace"] == "racetrack"
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert "storageClassName" not in claim["spec"]
    assert deployment_replicas(objects, "racetrack-lifecycle") >= 2

    key_mount = mounts[f"{HOME}/secret.key"]
    assert key_mount["subPath"] == "secret.key"
    assert key_mount["readOnly"] is True
    source = volumes[key_mount["name"]]["secret"]
    assert source["items"] == [{"key": "secret.key", "path": "secret.key"}]
    assert source["defaultMode"] == 0o440
    secrets = {s["metadata"]["name"]: s for s in _by_kind(objects, "Secret")}
    assert "secret.key" in secrets[source["secretName"]]["stringData"]
    assert mounts[f"{HOME}/config.yaml"]["subPath"] == "config.yaml"
    assert pod["securityContext"]["fsGroup"] == 10001


def deployment_replicas(objects: list[dict[str, Any]], name: str) -> int:
    [deployment] = [d for d in _by_kind(objects, "Deployment") if d["metadata"]["name"] == name]
    return int(deployment["spec"]["replicas"])


def test_the_secret_key_placeholder_is_refused_by_lifecycle(tmp_path: Path) -> None:
    """Left in, the base's placeholder key stops Lifecycle at its start, naming the file (a
    known key would seal every installation's secrets alike)."""
    secrets = {s["metadata"]["name"]: s for s in _by_kind(assembled_base(), "Secret")}
    (tmp_path / "secret.key").write_text(
        secrets["racetrack-secret-key"]["stringData"]["secret.key"]
    )
    with pytest.raises(SecretsError, match="holds no Fernet key"):
        SecretBox(tmp_path / "secret.key")


def test_the_commented_builder_and_registry_settings_are_accepted() -> None:
    """The ConfigMap shows where to name the engine that builds and the registry; uncommented,
    the Kubernetes target accepts them."""
    [config] = [
        c for c in _by_kind(assembled_base(), "ConfigMap") if c["metadata"]["name"] == CONFIG
    ]
    lines = config["data"]["config.yaml"].splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "# build:")
    block = [line.replace("# ", "", 1) for line in lines[start:] if line.strip().startswith("# ")]
    text = "\n".join(line for line in lines if line not in lines[start:]) + "\n" + "\n".join(block)
    target = YAML(typ="safe").load(text)["targets"]["kubernetes"]
    assert target["build"]["engine"].startswith("tcp://")
    assert target["registry"]["address"]
    if importlib.util.find_spec("racetrack_plugins.k8s_infra") is None:
        pytest.skip("the Kubernetes target (racetrack_plugins.k8s_infra) is not installed")
    module = importlib.import_module("racetrack_plugins.k8s_infra.settings")
    parsed = module.KubernetesSettings.from_mapping(target)
    assert parsed.build.engine == target["build"]["engine"]
    assert parsed.registry is not None
