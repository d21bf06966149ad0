"""Pub spreads a Kubernetes job's calls across its pods, not over kept-alive Service connections.

The driver (real lightkube client, kmock's emulator) reports each ready pod of a job version
as an instance of its replica; the real Lifecycle's job watcher records them, Lifecycle answers
them to Pub as the job's ``replica_internal_names``, and the real Pub sends each call to the
next ready one. The emulator runs no kubelet, so the tests write the pods' addresses and
readiness through the API. The addresses are loopback ones (127.0.0.2-4), where real servers
stand for the pods' job containers on the job's port: no traffic goes anywhere but the
loopback. The Service URL, used when fewer than two pods serve, is only asserted, never called.
"""

from __future__ import annotations

import errno
import functools
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from lightkube import codecs
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Pod
from lightkube.types import PatchType

from racetrack_core import PluginManager
from racetrack_core.infrastructure import ReplicaStatus, TargetContext
from racetrack_core.lifecycle import create_app as create_lifecycle
from racetrack_core.lifecycle.accounts import ensure_admin, issue_token
from racetrack_core.lifecycle.service import replica_to_json
from racetrack_core.pub import PubConfig, create_app
from racetrack_core.pub.asgi.serving import PubHttpProtocol
from racetrack_core.settings import Settings
from racetrack_core.storage.database import connect, migrate
from racetrack_core.storage.models import SubjectKind
from racetrack_plugins.k8s_infra import KubernetesDriver, names, objects
from tests.lifecycle.records import add_jobs
from tests.pub.servers import Server

from .conftest import NAMESPACE, job_spec, write_kubeconfig
from .emulator import RunningEmulator

D1, D2 = "d1" + "0" * 30, "d2" + "0" * 30
POD_ADDRESSES = ("127.0.0.2", "127.0.0.3", "127.0.0.4")


class PodServer(ThreadingHTTPServer):
    """What a pod's job container answers: the contract's probes, and its own name."""

    daemon_threads = True

    def __init__(self, name: str, address: tuple[str, int]) -> None:
        self.name = name
        self.ready = True
        self.calls = 0
        super().__init__(address, PodHandler)


class PodHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the job servers do
    server: PodServer

    def do_GET(self) -> None:
        if self.path == "/live":
            self._answer(200, {"live": True, "deployment_timestamp": 100})
        elif self.path == "/ready":
            self._answer(200 if self.server.ready else 503, {"ready": self.server.ready})
        else:
            self.server.calls += 1
            self._answer(200, {"pod": self.server.name})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_pods() -> list[PodServer]:
    """Three pod servers on one port, each on its own loopback address (as pods share the job
    port, each on its own IP)."""
    for _ in range(20):
        with socket.socket() as probe:
            probe.bind((POD_ADDRESSES[0], 0))
            port = int(probe.getsockname()[1])
        servers: list[PodServer] = []
        try:
            for number, address in enumerate(POD_ADDRESSES):
                servers.append(PodServer(f"primer-{'abc'[number]}", (address, port)))
        except OSError as error:
            for server in servers:
                server.server_close()
            if error.errno != errno.EADDRINUSE:
                raise
            continue
        for server in servers:
            threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return servers
    raise RuntimeError("no port free on every pod address")


@pytest.fixture
def pods() -> Iterator[list[PodServer]]:
    servers = serve_pods()
    yield servers
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def spread_driver(
    emulator: RunningEmulator, tmp_path: Path, pods: list[PodServer]
) -> Iterator[KubernetesDriver]:
    """The target with ``job_port`` set to the pod servers' port."""
    settings = {
        "auth": "kubeconfig",
        "kubeconfig": str(write_kubeconfig(tmp_path / "kubeconfig", emulator.url)),
        "namespace": NAMESPACE,
        "job_port": pods[0].server_address[1],
        "build": {"repository": "registry.test/racetrack-job"},
    }
    made = KubernetesDriver(TargetContext(tmp_path / "home", settings))
    yield made
    made.close()


def add_pod(
    driver: KubernetesDriver, name: str, address: str | None, ready: bool, deployment_id: str = D1
) -> None:
    """A pod of a deployment (the first) as the kubelet reports it: its IP and readiness."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {
                **names.labels("racetrack", "primer", "1.0.0"),
                names.LABEL_DEPLOYMENT: deployment_id,
            },
        },
        "spec": {"containers": [{"name": "job", "image": "i"}]},
        "status": {
            **({"podIP": address} if address else {}),
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }
    driver.cluster.client.create(codecs.from_dict(pod))


def set_ready(driver: KubernetesDriver, name: str, ready: bool) -> None:
    """The kubelet's readiness probe changed its verdict."""
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    driver.cluster.client.patch(
        Pod.Status, name, {"status": {"conditions": [condition]}},
        namespace=NAMESPACE, patch_type=PatchType.MERGE,
    )  # fmt: skip


def test_each_ready_pod_is_an_instance_and_two_or_more_become_the_endpoints(
    spread_driver: KubernetesDriver, tmp_path: Path, pods: list[PodServer]
) -> None:
    port = pods[0].server_address[1]
    replica = spread_driver.start(job_spec(tmp_path, manifest={"replicas": 3}))
    service = f"http://job-primer-1-0-0.{NAMESPACE}.svc.cluster.local:{port}"
    assert replica.url == service
    assert replica.endpoints == ()

    add_pod(spread_driver, "primer-a", "127.0.0.2", ready=True)
    add_pod(spread_driver, "primer-b", None, ready=False)  # scheduled, no address yet
    [state] = spread_driver.replicas()
    # One serving pod: the Service is the address (it reaches that pod alone anyway).
    assert state.replica.urls == (service,)
    assert [(i.name, i.url, i.status) for i in state.instances] == [
        ("primer-a", f"http://127.0.0.2:{port}", ReplicaStatus.RUNNING),
        ("primer-b", service, ReplicaStatus.STARTING),
    ]

    set_ready(spread_driver, "primer-b", True)  # still no address: not an endpoint
    add_pod(spread_driver, "primer-c", "127.0.0.4", ready=True)
    add_pod(spread_driver, "primer-d", "127.0.0.3", ready=False)
    [state] = spread_driver.replicas()
    assert state.status == ReplicaStatus.RUNNING
    assert state.replica.url == service
    assert state.replica.endpoints == (f"http://127.0.0.2:{port}", f"http://127.0.0.4:{port}")
    assert state.replica.id == replica.id


def test_a_stopping_pod_is_neither_an_endpoint_nor_an_instance(
    spread_driver: KubernetesDriver, tmp_path: Path, pods: list[PodServer]
) -> None:
    port = pods[0].server_address[1]
    spread_driver.start(job_spec(tmp_path, manifest={"replicas": 3}))
    for name, address in zip(("primer-a", "primer-b", "primer-c"), POD_ADDRESSES, strict=True):
        add_pod(spread_driver, name, address, ready=True)
    # The API marks a pod being deleted with a deletionTimestamp; the kubelet may still
    # report it ready while it finishes its calls. kmock keeps what is written.
    stopping = spread_driver.cluster.get("Pod", "primer-c")
    assert stopping is not None
    stopping["metadata"]["deletionTimestamp"] = "2026-12-07T04:00:00Z"
    spread_driver.cluster.write(stopping)
    [state] = spread_driver.replicas()
    assert state.replica.endpoints == (f"http://127.0.0.2:{port}", f"http://127.0.0.3:{port}")
    assert [instance.name for instance in state.instances] == ["primer-a", "primer-b"]


def test_the_network_policy_admits_pub_on_the_port_pub_calls_pods_at(
    spread_driver: KubernetesDriver, emulator: RunningEmulator, tmp_path: Path,
    pods: list[PodServer],
) -> None:  # fmt: skip
    spread_driver.start(job_spec(tmp_path, manifest={"replicas": 2}))
    for name, address in zip(("primer-a", "primer-b"), POD_ADDRESSES[:2], strict=True):
        add_pod(spread_driver, name, address, ready=True)
    [state] = spread_driver.replicas()
    [policy] = emulator.stored("networkpolicies")
    [rule] = policy["spec"]["ingress"]
    ports = {entry["port"] for entry in rule["ports"]}
    assert {int(url.rsplit(":", 1)[1]) for url in state.replica.endpoints} <= ports
    peers = [peer["podSelector"]["matchLabels"] for peer in rule["from"]]
    assert dict(spread_driver.settings.pub_pod_labels) in peers
    # The policy selects the very pods whose addresses Pub calls (every pod of the version).
    selected = policy["spec"]["podSelector"]["matchLabels"]
    for pod in emulator.stored("pods"):
        assert selected.items() <= pod["metadata"]["labels"].items()
    # And the pods listen there: the container's port is the job port.
    [deployment] = emulator.stored("deployments")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["ports"][0]["containerPort"] in ports
    assert container["ports"][0]["name"] == objects.PORT_NAME


class Lifecycle:
    """The real Lifecycle app on 127.0.0.1, its Kubernetes target on the emulator, with the
    job ``primer`` 1.0.0 recorded as a deployment leaves it (its replica the Service)."""

    def __init__(self, tmp_path: Path, emulator: RunningEmulator, port: int) -> None:
        target = {
            "auth": "kubeconfig",
            "kubeconfig": str(write_kubeconfig(tmp_path / "kubeconfig", emulator.url)),
            "namespace": NAMESPACE,
            "job_port": port,
        }
        # The watcher's own rounds are the test's: the background one waits an hour.
        self.settings = Settings(
            home=tmp_path / "lifecycle", job_watch_interval=3600, targets={"kubernetes": target}
        )
        self.engine = connect(self.settings.database_url)
        migrate(self.engine)
        ensure_admin(self.engine, self.settings.home, "a password for the test")
        self.token = issue_token(self.engine, SubjectKind.USER, "admin")
        self.app = create_lifecycle(self.settings, PluginManager(), self.engine)
        self.server = Server(self.app, lifespan="on")
        self.url = self.server.url

    @property
    def driver(self) -> KubernetesDriver:
        made = self.app.state.service.driver("kubernetes")
        assert isinstance(made, KubernetesDriver)
        return made

    def record(self, replica: Any) -> None:
        add_jobs(
            self.settings,
            ("primer", "1.0.0"),
            infrastructure_target="kubernetes",
            internal_name=replica.url,
            replica=replica_to_json(replica),
        )

    def watch_once(self) -> dict[str, Any]:
        """One round of the job watcher, then the job record as Lifecycle serves it."""
        self.app.state.watcher.reconcile()
        with httpx.Client(timeout=5.0, trust_env=False) as client:
            answer = client.get(
                f"{self.url}/api/v1/job/primer/1.0.0", headers={"X-Racetrack-Auth": self.token}
            )
        assert answer.status_code == 200, answer.text
        record: dict[str, Any] = answer.json()
        return record

    def stop(self) -> None:
        self.server.stop()
        self.engine.dispose()


@pytest.fixture
def lifecycle(
    tmp_path: Path, emulator: RunningEmulator, pods: list[PodServer]
) -> Iterator[Lifecycle]:
    running = Lifecycle(tmp_path, emulator, pods[0].server_address[1])
    yield running
    running.stop()


@pytest.fixture
def pub(lifecycle: Lifecycle) -> Iterator[str]:
    """Pub (its ASGI app, as served) in front of that Lifecycle; grants are kept 0.2 s."""
    config = PubConfig(
        lifecycle_url=lifecycle.url,
        auth_cache_ttl=0.2,
        instance_probe_interval=0.1,
        instance_probe_timeout=0.5,
    )
    protocol = functools.partial(PubHttpProtocol, pub_config=config)
    server = Server(create_app(config), lifespan="on", proxy_headers=False, http=protocol)
    yield server.url
    server.stop()


def answered_by(client: httpx.Client, url: str, calls: int, token: str) -> list[str]:
    names_ = []
    for _ in range(calls):
        answer = client.get(url, headers={"X-Racetrack-Auth": token})
        assert answer.status_code == 200, answer.text
        names_.append(answer.json()["pod"])
    return names_


def test_pub_sends_calls_to_the_ready_pods_in_turn_and_drops_one_that_is_not_ready(
    tmp_path: Path, pods: list[PodServer], lifecycle: Lifecycle, pub: str
) -> None:
    port = pods[0].server_address[1]
    driver = lifecycle.driver
    replica = driver.start(job_spec(tmp_path, manifest={"replicas": 3}))
    lifecycle.record(replica)  # as the deployment's switch leaves it: the Service's address
    for name, address in zip(("primer-a", "primer-b", "primer-c"), POD_ADDRESSES, strict=True):
        add_pod(driver, name, address, ready=True)

    first = lifecycle.watch_once()
    assert first["status"] == "running"
    assert first["internal_name"] == replica.url  # the Service, kept as the fallback
    assert first["replica_internal_names"] == [
        f"http://{address}:{port}" for address in POD_ADDRESSES
    ]
    # Lifecycle probed each pod (/live, /ready) and names each one's state.
    assert [(i["name"], i["status"]) for i in first["instances"]] == [
        ("primer-a", "ready"),
        ("primer-b", "ready"),
        ("primer-c", "ready"),
    ]
    job_url = f"{pub}/pub/job/primer/1.0.0/perform"
    token = lifecycle.token
    with httpx.Client(timeout=10.0, trust_env=False) as client:
        # One client, one kept-alive connection to Pub; every pod still takes its turn.
        answered = answered_by(client, job_url, 6, token)
        assert sorted(answered) == ["primer-a"] * 2 + ["primer-b"] * 2 + ["primer-c"] * 2
        assert answered[:3] == answered[3:]  # in turn, not by chance

        # The kubelet finds primer-c not ready: it leaves the endpoints, and Pub's calls.
        # (Its server still answers /ready here, so that Pub's own probes, which would drop
        # it too, cannot be what leaves it out: the record is.)
        set_ready(driver, "primer-c", False)
        second = lifecycle.watch_once()
        assert second["replica_internal_names"] == [
            f"http://{address}:{port}" for address in POD_ADDRESSES[:2]
        ]
        assert second["instances"][2]["status"] == "starting"
        before = pods[2].calls
        answered_by(client, job_url, 2, token)  # a grant cached 0.2 s ago may still name it
        _wait_until(lambda: set(answered_by(client, job_url, 4, token)) == {"primer-a", "primer-b"})
        calls = pods[2].calls
        assert answered_by(client, job_url, 6, token).count("primer-c") == 0
        assert pods[2].calls == calls
        assert calls - before <= 2

        # Down to one serving pod: the record names the Service alone, which Pub would call.
        set_ready(driver, "primer-b", False)
        third = lifecycle.watch_once()
        assert third["replica_internal_names"] == [replica.url]
        assert third["status"] == "running"


def _wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_redeploy_in_progress_leaves_the_serving_deployment_running_in_the_record(
    tmp_path: Path, pods: list[PodServer], lifecycle: Lifecycle
) -> None:
    """Until the new deployment is switched to, the record names the one it replaces, whose
    pods still serve: the watcher must find that replica (not call the job lost)."""
    port = pods[0].server_address[1]
    driver = lifecycle.driver
    first = driver.start(job_spec(tmp_path, manifest={"replicas": 2}))
    lifecycle.record(first)
    for name, address in zip(("primer-a", "primer-b"), POD_ADDRESSES[:2], strict=True):
        add_pod(driver, name, address, ready=True)
    assert lifecycle.watch_once()["status"] == "running"

    second = driver.start(job_spec(tmp_path, manifest={"replicas": 2}, deployment_id=D2))
    add_pod(driver, "primer-new", POD_ADDRESSES[2], ready=False, deployment_id=D2)
    during = lifecycle.watch_once()
    assert (during["status"], during["error"]) == ("running", None)
    assert [i["name"] for i in during["instances"]] == ["primer-a", "primer-b"]
    states = {state.replica.id: state for state in driver.replicas()}
    assert set(states) == {first.id, second.id}
    assert states[first.id].replica.deployment_timestamp == 100
    assert [i.name for i in states[second.id].instances] == ["primer-new"]
    assert (
        states[first.id].replica.endpoints
        == states[second.id].replica.endpoints
        == (
            f"http://127.0.0.2:{port}",
            f"http://127.0.0.3:{port}",
        )
    )

    driver.retire(first)  # switched to the new one: the replaced one is no longer reported
    assert {state.replica.id for state in driver.replicas()} == {second.id}


def test_the_watcher_names_an_unrecorded_deployment_orphaned_and_a_removed_one_lost(
    tmp_path: Path, pods: list[PodServer], lifecycle: Lifecycle
) -> None:
    """The job watcher's judgement on what the Kubernetes target lists by its owner label: a
    Deployment that no job record names is reported orphaned (after two rounds, as on the
    other targets), and a recorded one deleted behind Lifecycle's back makes its job lost."""
    driver = lifecycle.driver
    recorded = driver.start(job_spec(tmp_path, manifest={"replicas": 2}))
    lifecycle.record(recorded)
    for name, address in zip(("primer-a", "primer-b"), POD_ADDRESSES[:2], strict=True):
        add_pod(driver, name, address, ready=True)
    assert lifecycle.watch_once()["status"] == "running"

    stray = driver.start(
        job_spec(tmp_path, name="stray", version="2.0.0", deployment_id="d3" + "0" * 30)
    )
    watcher = lifecycle.app.state.watcher
    assert lifecycle.watch_once()["status"] == "running"
    assert watcher.orphans() == []  # one round: it may be a deployment about to be recorded
    assert lifecycle.watch_once()["status"] == "running"
    assert watcher.orphans() == [stray.id]
    assert recorded.id not in watcher.orphans()

    driver.cluster.client.delete(
        Deployment, names.object_name("primer", "1.0.0"), namespace=NAMESPACE
    )  # kubectl delete deployment, by hand
    lost = lifecycle.watch_once()
    assert (lost["status"], lost["error"]) == ("lost", "the job's replica is not running")
