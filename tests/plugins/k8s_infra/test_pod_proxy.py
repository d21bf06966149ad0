"""docker-proxy jobs on the Kubernetes target: the proxy as a second container of the pod.

Offline, the rendered pod is validated in strict mode and its meaning asserted. Then a real
docker-proxy job is built by the real image builder, pushed to a real registry on 127.0.0.1,
written to kmock's emulator by the driver, and its two containers are pulled back by digest and
run as the Deployment says, as a kubelet would: the engine's default seccomp profile, every
capability dropped, no privilege escalation, and one network namespace shared by both (the
host's loopback here, standing for the pod's). Calls reach the job's own server through the
proxy, on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx
import kubernetes_validate
import pytest

from racetrack_core.infrastructure import DeployError, JobSpec, TargetContext
from racetrack_core.recipes import Recipes
from racetrack_core.registry import JobType
from racetrack_plugins.docker_proxy.image import DEFAULT_BUILDER_IMAGE, DockerProxyImageRecipe
from racetrack_plugins.k8s_infra import KubernetesDriver, objects
from racetrack_plugins.k8s_infra.settings import KubernetesSettings
from tests.plugins.docker_infra.conftest import base_image, docker_client
from tests.plugins.golang.conftest import go, go_build_cache
from tests.plugins.golang.test_image import builder_image

from .conftest import NAMESPACE, write_kubeconfig
from .emulator import RunningEmulator
from .test_image_registry import REGISTRY_BINARY, USER, Registry
from .test_objects import ENVIRONMENT, NEWEST, OLDEST, release

__all__ = ["base_image", "builder_image", "docker_client", "go", "go_build_cache"]

PROXY_COMMAND = ("/racetrack/proxy", "-racetrack-pod")
REPOSITORY = "racetrack-test-k8s-proxy"
CONTAINER_LABEL = {"racetrack-test": "k8s-pod-proxy"}


def wrapped() -> dict[str, Any]:
    settings = KubernetesSettings(image_pull_secret="registry-login")
    chosen = release(pod_proxy=PROXY_COMMAND)
    return {obj["kind"]: obj for obj in objects.render(chosen, ENVIRONMENT, settings)}


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_a_wrapped_jobs_deployment_is_valid_in_strict_mode(version: str) -> None:
    assert kubernetes_validate.validate(wrapped()["Deployment"], version, strict=True) == version


def test_the_proxy_serves_the_port_and_probes_beside_the_jobs_own_server() -> None:
    pod = wrapped()["Deployment"]["spec"]["template"]["spec"]
    job, proxy = pod["containers"]
    assert (job["name"], proxy["name"]) == ("job", "proxy")
    assert job["image"] == proxy["image"]  # one image, pulled once per node
    # The job's container runs the image's own command on its own port: no command, no port,
    # no JOB_PORT (which is the proxy's in the network they share), no probes.
    assert "command" not in job
    assert "args" not in job
    assert "ports" not in job
    assert not {"startupProbe", "livenessProbe", "readinessProbe"} & job.keys()
    assert "JOB_PORT" not in {variable["name"] for variable in job["env"]}
    assert job["envFrom"] == [{"secretRef": {"name": f"job-primer-1-2-3-{'0123456789ab'}"}}]
    # The proxy answers for the pod: the job's port, the probes, the job's identity.
    assert proxy["command"] == list(PROXY_COMMAND)
    assert proxy["ports"] == [{"name": "http", "containerPort": 7000, "protocol": "TCP"}]
    assert proxy["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert proxy["startupProbe"]["httpGet"]["path"] == "/live"
    values = {variable["name"]: variable.get("value") for variable in proxy["env"]}
    assert values["JOB_PORT"] == "7000"
    assert values["JOB_HOST"] == "0.0.0.0"  # noqa: S104 (the pod's address)
    assert values["JOB_DEPLOYMENT_TIMESTAMP"] == "1700000000"
    assert (values["JOB_NAME"], values["JOB_VERSION"]) == ("primer", "1.2.3")
    # No runtime secret in the proxy: it does not read the Secret.
    assert "envFrom" not in proxy
    assert not any(secret in json.dumps(proxy) for secret in ("s3cret", "family-token-1"))
    # The pod's security settings hold for both containers.
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    for container in (job, proxy):
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
        }
        assert container["resources"]["limits"]["memory"]


def test_a_job_serving_alone_keeps_one_container() -> None:
    settings = KubernetesSettings()
    deployment = objects.deployment(release(), settings)
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["ports"][0]["containerPort"] == 7000
    assert "JOB_PORT" in {variable["name"] for variable in container["env"]}


# --- a real docker-proxy job, built, pushed, and run as its pod says -------------------------

SERVER = """\
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        number = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["number"]
        prime = number > 1 and all(number % d for d in range(2, int(number ** 0.5) + 1))
        body = json.dumps({"prime": prime, "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

ThreadingHTTPServer(("127.0.0.1", int(os.environ["JOB_USER_MODULE_PORT"])), Handler).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    if not REGISTRY_BINARY.is_file():
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    running = Registry(tmp_path_factory.mktemp("registry"))
    yield running
    running.stop()


@pytest.fixture
def engine(docker_client: Any) -> Iterator[Any]:
    """The engine; this test's containers and images are removed afterwards."""
    yield docker_client
    for container in docker_client.containers.list(all=True, filters={"label": "racetrack-test"}):
        if container.labels.get("racetrack-test") == CONTAINER_LABEL["racetrack-test"]:
            container.remove(force=True)
    for image in docker_client.images.list():
        found = [*image.tags, *(image.attrs.get("RepoDigests") or [])]
        if any(REPOSITORY in name for name in found):
            with contextlib.suppress(docker.errors.APIError):
                docker_client.images.remove(image.id, force=True)


def proxy_spec(tmp_path: Path, base: str) -> JobSpec:
    job = tmp_path / "job"
    job.mkdir()
    (job / "server.py").write_text(SERVER)
    (job / "Dockerfile").write_text(
        f"FROM {base}\nWORKDIR /srv/job\nCOPY server.py .\nUSER 10001\n"
        'CMD ["python3", "server.py"]\n'
    )
    return JobSpec(
        name="pxy",
        version="1.0.0",
        manifest={"replicas": 2},
        job_type=JobType("docker-proxy", "1.0.0", recipes=Recipes(image=DockerProxyImageRecipe())),
        workspace=job,
        env={"JOB_NAME": "pxy", "JOB_VERSION": "1.0.0", "AUTH_TOKEN": "family-token-9"},
        deployment_id="c1" + secrets.token_hex(15),
        deployment_timestamp=321,
        state_dir=tmp_path / "state",
    )


def run_as_the_pod_says(
    engine: Any, container: dict[str, Any], env: dict[str, str], auth: dict[str, str]
) -> Any:
    """One container of the pod, as a kubelet runs it: pulled by digest, its command (or the
    image's own), its variables, the runtime's default seccomp profile, no capability, no
    privilege escalation, the pod's network (the host's loopback here)."""
    engine.images.pull(container["image"], auth_config=auth)
    security = container["securityContext"]
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["allowPrivilegeEscalation"] is False
    return engine.containers.run(
        container["image"],
        entrypoint=container.get("command"),
        environment=env,
        network_mode="host",
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        labels=CONTAINER_LABEL,
        detach=True,
    )


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_docker_proxy_job_is_pushed_and_its_pod_serves_through_the_proxy(
    engine: Any,
    registry: Registry,
    emulator: RunningEmulator,
    tmp_path: Path,
    base_image: str,
    builder_image: str,
) -> None:
    password_file = tmp_path / "registry-password"
    password_file.write_text(registry.password)
    settings = {
        "auth": "kubeconfig",
        "kubeconfig": str(write_kubeconfig(tmp_path / "kubeconfig", emulator.url)),
        "namespace": NAMESPACE,
        "registry": {
            "address": f"{registry.address}/{REPOSITORY}",
            "username": USER,
            "password_file": str(password_file),
        },
        "build": {"repository": REPOSITORY, "base_images": {DEFAULT_BUILDER_IMAGE: builder_image}},
    }
    driver = KubernetesDriver(TargetContext(tmp_path / "home", settings))
    spec = proxy_spec(tmp_path, base_image)
    log: list[str] = []
    driver.prepare(spec, log.append)
    driver.start(spec)
    driver.close()

    [deployment] = emulator.stored("deployments")
    for version in (OLDEST, NEWEST):
        kubernetes_validate.validate(deployment, version, strict=True)
    job, proxy = deployment["spec"]["template"]["spec"]["containers"]
    assert job["image"] == proxy["image"]
    assert job["image"].startswith(f"{registry.address}/{REPOSITORY}/pxy@sha256:")
    assert f"pushed image {job['image']}" in log
    assert proxy["command"] == list(PROXY_COMMAND)
    [secret] = emulator.stored("secrets")
    secret_env = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert secret_env["AUTH_TOKEN"] == "family-token-9"

    # The kubelet's part, on the loopback. The rendered variables, with the ports moved to
    # free ones and the proxy on 127.0.0.1, as the host's network stands for the pod's.
    port, user_port = free_port(), free_port()
    local = {"JOB_USER_MODULE_PORT": str(user_port), "JOB_REPLICA": "pxy-pod-1"}
    rendered = {v["name"]: v["value"] for v in proxy["env"] if "value" in v}
    proxy_env = {**rendered, **local, "JOB_PORT": str(port), "JOB_HOST": "127.0.0.1"}
    job_env = {**secret_env, **local}
    auth = {"username": USER, "password": registry.password}
    for built in engine.images.list(name=f"{REPOSITORY}/pxy"):  # the pods pull it
        engine.images.remove(built.id, force=True)
    started = [
        run_as_the_pod_says(engine, job, job_env, auth),
        run_as_the_pod_says(engine, proxy, proxy_env, auth),
    ]
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(timeout=5, trust_env=False) as client:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if client.get(f"{base}/ready").status_code == 200:
                    break
            if time.monotonic() > deadline:
                logs = [c.logs().decode(errors="replace")[-2000:] for c in started]
                raise AssertionError(f"the pod did not become ready: {logs}")
            time.sleep(0.2)
        assert client.get(f"{base}/live").json() == {"live": True, "deployment_timestamp": 321}
        called = client.post(
            f"{base}/pub/job/pxy/1.0.0/api/v1/perform", json={"number": 7907}
        ).json()
        assert called == {"prime": True, "path": "/perform"}
        assert client.get(f"{base}/health").json()["job_name"] == "pxy"

        # The job's server going away makes the pod not ready (the kubelet then stops
        # sending it traffic and restarts that container).
        started[0].kill()
        assert client.get(f"{base}/ready").status_code == 503


@pytest.mark.parametrize(
    ("labels", "refusal"),
    [
        (
            'racetrack.network-wrapper="/w"',
            r"names no command .*racetrack.pod-proxy.*docker target",
        ),
        ('racetrack.pod-proxy="proxy -x"', r"names 'proxy' in its label racetrack.pod-proxy"),
    ],
)
def test_a_wrapped_image_without_a_usable_pod_command_is_refused(
    engine: Any, emulator: RunningEmulator, tmp_path: Path, labels: str, refusal: str
) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM scratch\nLABEL {labels}\n")
    engine.images.build(path=str(tmp_path), tag=f"{REPOSITORY}/refused:1", rm=True)
    settings = {
        "auth": "kubeconfig",
        "kubeconfig": str(write_kubeconfig(tmp_path / "kubeconfig", emulator.url)),
        "namespace": NAMESPACE,
    }
    driver = KubernetesDriver(TargetContext(tmp_path / "home", settings))
    try:
        with pytest.raises(DeployError, match=refusal):
            driver._pod_proxy(f"{REPOSITORY}/refused:1")
    finally:
        driver.close()
