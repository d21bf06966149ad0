"""The Kubernetes target's driver, with its real lightkube client, against kmock's emulator.

Each test asserts on the objects the emulator stored and the requests the driver sent. The
emulator runs no controllers, so pods and Deployment status are written through the API by
the tests, as the kubelet and the Deployment controller would; the rollout itself is proven
from the rendered objects (``test_objects.py``), not simulated.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path
from typing import Any

import kubernetes_validate
import lightkube
import pytest
from lightkube import codecs
from lightkube.resources.apps_v1 import Deployment
from lightkube.types import PatchType

from racetrack_core.infrastructure import DeployError, InfrastructureDriver, ReplicaStatus
from racetrack_core.plugins import PluginManager
from racetrack_core.recipes import ArtifactKind
from racetrack_plugins.k8s_infra import KubernetesDriver, names
from racetrack_plugins.k8s_infra.cluster import Cluster

from .conftest import NAMESPACE, TOKEN, job_spec
from .emulator import RunningEmulator
from .test_objects import NEWEST, OLDEST

OBJECT = "job-primer-1-0-0"
D1, D2 = "d1" + "0" * 30, "d2" + "0" * 30


def sent(emulator: RunningEmulator, method: str, path_part: str = "") -> list[Any]:
    return [
        request
        for request in emulator.requests()
        if request.method.value == method and path_part in request.url.path
    ]


def only(emulator: RunningEmulator, plural: str, name: str = OBJECT) -> dict[str, Any]:
    [found] = emulator.stored(plural, name)
    return found


def assert_all_valid(emulator: RunningEmulator) -> None:
    """Every object the target wrote, as the API stored it, is what a cluster of either
    supported version accepts (strict: no unknown field), and a Deployment's annotations (the
    kept pod template among them) stay far below the API's 256 KiB limit on their size."""
    for plural in ("secrets", "services", "networkpolicies", "deployments"):
        for stored in emulator.stored(plural):
            for version in (OLDEST, NEWEST):
                kubernetes_validate.validate(stored, version, strict=True)
            notes = stored["metadata"].get("annotations") or {}
            assert sum(len(key) + len(value) for key, value in notes.items()) < 64 * 1024


def add_pod(driver: KubernetesDriver, name: str, deployment_id: str, **status: Any) -> None:
    """A pod of the job version's Deployment, as the controller and the kubelet make it."""
    complete = {"name": "job", "image": "i", "imageID": "", "ready": False, "restartCount": 0}
    if "containerStatuses" in status:
        status["containerStatuses"] = [{**complete, **c} for c in status["containerStatuses"]]
    labels = {
        **names.labels("racetrack", "primer", "1.0.0"),
        names.LABEL_DEPLOYMENT: deployment_id[:63],
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": labels,
            "creationTimestamp": status.pop("created", "2026-12-07T03:00:00Z"),
        },
        "spec": {"containers": [{"name": "job", "image": "i"}]},
        "status": status,
    }
    driver.cluster.client.create(codecs.from_dict(pod))


def test_start_writes_the_job_versions_objects(
    driver: KubernetesDriver, emulator: RunningEmulator, tmp_path: Path
) -> None:
    replica = driver.start(job_spec(tmp_path))
    assert replica.url == f"http://{OBJECT}.{NAMESPACE}.svc.cluster.local:7000"
    assert replica.id == f"{OBJECT}@{D1}"
    deployment = only(emulator, "deployments")
    assert deployment["spec"]["replicas"] == 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"registry.test/racetrack-job/primer:1.0.0-{D1}"
    assert container["resources"]["limits"]["memory"] == "1Gi"
    assert only(emulator, "services")["spec"]["ports"][0]["port"] == 7000
    assert only(emulator, "networkpolicies")["spec"]["policyTypes"] == ["Ingress"]
    secret = only(emulator, "secrets", f"{OBJECT}-{D1[:12]}")
    assert base64.b64decode(secret["data"]["API_KEY"]) == b"s3cret"
    # What the API stored is what a cluster of either supported version accepts.
    assert_all_valid(emulator)
    # Created in order (the Secret before the pods that read it), in the jobs' namespace,
    # authenticated with the kubeconfig's token, and no secret in any other object.
    posts = sent(emulator, "POST")
    assert [request.url.path.rsplit("/", 1)[1] for request in posts] == [
        "secrets",
        "services",
        "networkpolicies",
        "deployments",
    ]
    assert all(f"/namespaces/{NAMESPACE}/" in request.url.path for request in posts)
    assert all(request.headers["Authorization"] == f"Bearer {TOKEN}" for request in posts)
    for request in posts[1:]:
        assert "s3cret" not in request.text


def test_a_redeploy_replaces_the_deployment_and_retire_drops_the_old_secret(
    driver: KubernetesDriver, emulator: RunningEmulator, tmp_path: Path
) -> None:
    first = driver.start(job_spec(tmp_path))
    second = driver.start(job_spec(tmp_path, deployment_id=D2, deployment_timestamp=200))
    assert second.id != first.id
    assert second.url == first.url  # one Service: Pub's address does not change
    puts = sent(emulator, "PUT", "/deployments/")
    assert len(puts) == 1  # replaced, not created again
    deployment = only(emulator, "deployments")
    template = deployment["spec"]["template"]
    assert template["metadata"]["annotations"][names.ANNOTATION_DEPLOYMENT] == D2
    assert template["metadata"]["labels"][names.LABEL_DEPLOYMENT] == D2
    kept = json.loads(deployment["metadata"]["annotations"][names.ANNOTATION_PREVIOUS])
    assert kept["metadata"]["annotations"][names.ANNOTATION_DEPLOYMENT] == D1
    # The replaced Service keeps what the cluster gave it, and the write is conditional.
    assert puts[0].data["metadata"].get("resourceVersion") is None  # none was stored yet
    assert len(emulator.stored("secrets")) == 2  # the old pods still read theirs
    assert_all_valid(emulator)  # the kept template is an annotation the API accepts

    driver.retire(first)
    [secret] = emulator.stored("secrets")
    assert secret["metadata"]["name"] == f"{OBJECT}-{D2[:12]}"
    deployment = only(emulator, "deployments")
    assert names.ANNOTATION_PREVIOUS not in deployment["metadata"]["annotations"]
    assert deployment["metadata"]["annotations"][names.ANNOTATION_REPLICA] == second.id
    assert_all_valid(emulator)


def test_a_replace_carries_the_stored_resource_version(
    driver: KubernetesDriver, emulator: RunningEmulator, tmp_path: Path
) -> None:
    driver.start(job_spec(tmp_path))
    driver.start(job_spec(tmp_path, deployment_id=D2))  # stored objects now have a version
    driver.start(job_spec(tmp_path, deployment_id="d3" + "0" * 30))
    last = sent(emulator, "PUT", "/deployments/")[-1]
    assert last.data["metadata"]["resourceVersion"]
    service = sent(emulator, "PUT", "/services/")[-1]
    assert service.data["metadata"]["resourceVersion"]


def test_a_failed_redeploy_puts_the_previous_template_back(
    driver: KubernetesDriver, emulator: RunningEmulator, tmp_path: Path
) -> None:
    first = driver.start(job_spec(tmp_path))
    before = only(emulator, "deployments")["spec"]["template"]
    failed = driver.start(job_spec(tmp_path, deployment_id=D2, deployment_timestamp=200))
    driver.stop(failed)
    deployment = only(emulator, "deployments")
    assert deployment["spec"]["template"] == before
    notes = deployment["metadata"]["annotations"]
    assert notes[names.ANNOTATION_REPLICA] == first.id
    assert notes[names.ANNOTATION_TIMESTAMP] == "100"
    assert names.ANNOTATION_PREVIOUS not in notes
    [secret] = emulator.stored("secrets")
    assert secret["metadata"]["name"] == f"{OBJECT}-{D1[:12]}"
    assert len(emulator.stored("services")) == 1
    assert_all_valid(emulator)  # the template put back, as stored


def test_a_failed_first_deployment_leaves_nothing(
    driver: KubernetesDriver, emulator: RunningEmulator, tmp_path: Path
) -> None:
    driver.stop(driver.start(job_spec(tmp_path)))
    for plural in ("deployments", "services", "networkpolicies", "secrets"):
        assert emulator.stored(plural) == [], plural


def test_delete_removes_every_object_of_the_version_only(
    driver: KubernetesDriver, emulator: RunningEmulator, tmp_path: Path
) -> None:
    driver.start(job_spec(tmp_path))
    driver.start(job_spec(tmp_path, deployment_id=D2))
    driver.start(job_spec(tmp_path, version="2.0.0"))
    driver.delete("primer", "1.0.0")
    left = {obj["metadata"]["name"] for plural in ("deployments", "services", "secrets")
            for obj in emulator.stored(plural)}  # fmt: skip
    assert left == {"job-primer-2-0-0", f"job-primer-2-0-0-{D1[:12]}"}
    [listing] = [r for r in sent(emulator, "GET", "/secrets") if r.url.path.endswith("/secrets")]
    assert set(listing.params["labelSelector"].split(",")) == {
        "racetrack.io/owner=racetrack",
        "racetrack.io/job=primer",
        "racetrack.io/version=1.0.0",
    }
    driver.delete("primer", "1.0.0")  # nothing left: no error


def test_status_reports_running_crash_loops_and_image_pull_errors(
    driver: KubernetesDriver, emulator: RunningEmulator, tmp_path: Path
) -> None:
    replica = driver.start(job_spec(tmp_path))
    [state] = driver.replicas()
    assert (state.replica.id, state.status) == (replica.id, ReplicaStatus.STARTING)
    assert state.replica.url == replica.url
    assert state.replica.deployment_timestamp == 100

    ready = {"conditions": [{"type": "Ready", "status": "True"}]}
    add_pod(driver, "primer-a", D1, **ready)
    [state] = driver.replicas()
    assert state.status == ReplicaStatus.RUNNING

    crashing = {
        "restartCount": 2,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s"}},
        "lastState": {"terminated": {"exitCode": 3, "reason": "Error"}},
    }
    add_pod(driver, "primer-b", D1, containerStatuses=[{"name": "job", **crashing}])
    [state] = driver.replicas()
    assert state.status == ReplicaStatus.STARTING  # fewer restarts than crash_limit (3)
    assert "CrashLoopBackOff" in (state.error or "")
    add_pod(
        driver, "primer-c", D1, containerStatuses=[{"name": "job", **crashing, "restartCount": 4}]
    )
    [state] = driver.replicas()
    assert state.status == ReplicaStatus.ERROR
    assert state.error == (
        "pod primer-c: CrashLoopBackOff, restarted 4 times (last exit code 3, Error)"
    )
    assert state.restarts == 6


def test_an_image_pull_error_is_reported_at_once_with_its_reason(
    driver: KubernetesDriver, emulator: RunningEmulator, tmp_path: Path
) -> None:
    driver.start(job_spec(tmp_path))
    # A pod of an older deployment does not count against the current one.
    add_pod(driver, "primer-old", "d0", containerStatuses=[{"name": "job", "restartCount": 9,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}}}])  # fmt: skip
    pulling = {"waiting": {"reason": "ImagePullBackOff", "message": 'pull "x": unauthorized'}}
    add_pod(driver, "primer-a", D1, containerStatuses=[{"name": "job", "state": pulling}])
    [state] = driver.replicas()
    assert state.status == ReplicaStatus.ERROR
    assert state.error == 'pod primer-a: ImagePullBackOff: pull "x": unauthorized'


def test_a_stuck_rollout_is_an_error(
    driver: KubernetesDriver, emulator: RunningEmulator, tmp_path: Path
) -> None:
    driver.start(job_spec(tmp_path))
    condition = {
        "type": "Progressing",
        "status": "False",
        "reason": "ProgressDeadlineExceeded",
        "message": 'ReplicaSet "primer-x" has timed out progressing.',
    }
    driver.cluster.client.patch(
        Deployment.Status, OBJECT, {"status": {"conditions": [condition]}}, namespace=NAMESPACE,
        patch_type=PatchType.MERGE,
    )  # fmt: skip
    [state] = driver.replicas()
    assert state.status == ReplicaStatus.ERROR
    assert state.error == (
        "the Deployment reports ProgressDeadlineExceeded: "
        'ReplicaSet "primer-x" has timed out progressing.'
    )


def test_listing_sees_only_this_owners_jobs(
    driver: KubernetesDriver, emulator: RunningEmulator, tmp_path: Path
) -> None:
    driver.start(job_spec(tmp_path))
    stranger = only(emulator, "deployments")
    stranger["metadata"] = {
        **stranger["metadata"],
        "name": "job-other-1-0-0",
        "labels": {**stranger["metadata"]["labels"], names.LABEL_OWNER: "someone-else"},
    }
    stranger["metadata"].pop("resourceVersion", None)
    driver.cluster.client.create(codecs.from_dict(stranger))
    states = driver.replicas()
    assert [state.replica.id for state in states] == [f"{OBJECT}@{D1}"]
    listing = [r for r in sent(emulator, "GET") if r.url.path.endswith("/deployments")][-1]
    assert listing.params["labelSelector"] == "racetrack.io/owner=racetrack"


def test_restore_adopts_a_running_deployment_without_writing(
    driver: KubernetesDriver, emulator: RunningEmulator, tmp_path: Path
) -> None:
    spec = job_spec(tmp_path)
    replica = driver.start(spec)
    writes = len(sent(emulator, "PUT")) + len(sent(emulator, "POST"))
    adopted = driver.restore(spec, replica)
    assert adopted == replica
    assert len(sent(emulator, "PUT")) + len(sent(emulator, "POST")) == writes


def test_logs_come_from_the_newest_pod_of_the_current_deployment(
    driver: KubernetesDriver, emulator: RunningEmulator, tmp_path: Path
) -> None:
    driver.start(job_spec(tmp_path))
    assert driver.logs("primer", "1.0.0") == ""  # no pod yet
    add_pod(driver, "primer-old", D1, created="2026-12-07T01:00:00Z")
    add_pod(driver, "primer-new", D1, created="2026-12-07T02:00:00Z")
    path = f"/api/v1/namespaces/{NAMESPACE}/pods/primer-new/log"
    emulator.call(lambda handler: handler["get", path] << b"started\nserving\n")
    assert driver.logs("primer", "1.0.0", tail=2) == "started\nserving\n"
    [request] = sent(emulator, "GET", "/log")
    assert request.params["tailLines"] == "2"
    assert request.params["container"] == "job"

    lines = list(driver.follow_logs("primer", "1.0.0", tail=5))
    assert lines == ["started", "serving"]
    follow = sent(emulator, "GET", "/log")[-1]
    assert follow.params["follow"] == "true"


def test_following_logs_stops_when_asked(
    driver: KubernetesDriver, emulator: RunningEmulator, tmp_path: Path
) -> None:
    driver.start(job_spec(tmp_path))
    add_pod(driver, "primer-a", D1)
    path = f"/api/v1/namespaces/{NAMESPACE}/pods/primer-a/log"
    # A stream that stays open after its first line, as a running pod's does.
    emulator.call(lambda handler: handler["get", path] << (b"first\n", ...))
    stop = threading.Event()
    follower = driver.follow_logs("primer", "1.0.0", tail=1, stop=stop)
    assert next(follower) == "first"
    stop.set()
    assert list(follower) == []
    # The thread reading the stream is released too (and with it the API's connection).
    deadline = time.monotonic() + 5
    while any(thread.name == "k8s-logs" for thread in threading.enumerate()):
        assert time.monotonic() < deadline, "the log reader thread is still blocked"
        time.sleep(0.05)


def test_an_api_refusal_names_what_failed(
    driver: KubernetesDriver, emulator: RunningEmulator, tmp_path: Path
) -> None:
    emulator.call(
        lambda handler: (
            handler["post", "/apis/apps/v1/namespaces/jobs/deployments"]
            << (lambda request: _forbidden())
        )
    )
    refused = f"the Kubernetes API refused writing Deployment {OBJECT}: 403 Forbidden: no"
    with pytest.raises(DeployError, match=refused):
        driver.start(job_spec(tmp_path))


def _forbidden() -> Any:
    import kmock

    raise kmock.KubernetesError(status=403, reason="Forbidden", message="no, not here")


def test_the_driver_keeps_the_target_contract(driver: KubernetesDriver) -> None:
    assert isinstance(driver, InfrastructureDriver)
    assert isinstance(driver.cluster.client, lightkube.Client)


def test_the_target_is_a_built_in_plugin_for_image_recipes() -> None:
    manager = PluginManager(environ={}).load()
    target = manager.infrastructure_targets.get("kubernetes")
    assert target.driver is KubernetesDriver
    assert target.accepts == {ArtifactKind.IMAGE}
    assert target.plugin == "kubernetes"


def test_a_concurrent_change_is_not_overwritten_blindly(
    driver: KubernetesDriver,
    emulator: RunningEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another writer (a second Lifecycle) replaces the Deployment between our read and our
    replace: the API refuses our stale write (409), and the target reads again and retries."""
    driver.start(job_spec(tmp_path))
    driver.start(job_spec(tmp_path, deployment_id=D2))  # the stored Deployment has a version now
    other = Cluster(driver.cluster.client, NAMESPACE)
    read = driver.cluster.get
    reads: list[str] = []

    def get_then_race(kind: str, name: str) -> dict[str, Any] | None:
        found = read(kind, name)
        if kind == "Deployment" and found is not None:
            reads.append(name)
            if len(reads) == 2:  # the read that the replace's resourceVersion comes from
                changed = {**found, "metadata": {**found["metadata"], "labels": {
                    **found["metadata"]["labels"], "changed-by": "another-writer"}}}  # fmt: skip
                other.write(changed)
        return found

    monkeypatch.setattr(driver.cluster, "get", get_then_race)
    driver.start(job_spec(tmp_path, deployment_id="d3" + "0" * 30))
    other_put, stale, retried = sent(emulator, "PUT", "/deployments/")[-3:]
    version = other_put.data["metadata"]["resourceVersion"]
    assert stale.data["metadata"]["resourceVersion"] == version  # read before the race: refused
    assert retried.data["metadata"]["resourceVersion"] != version  # read again after the 409
    assert "changed-by" not in retried.data["metadata"]["labels"]
    deployment = only(emulator, "deployments")
    template = deployment["spec"]["template"]["metadata"]["annotations"]
    assert template[names.ANNOTATION_DEPLOYMENT] == "d3" + "0" * 30
