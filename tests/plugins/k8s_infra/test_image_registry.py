"""Images in a registry: built by the shared image builder, pushed with credentials to a real
registry on 127.0.0.1 (Debian's ``docker-registry`` with htpasswd auth), named by digest in the
Deployment, and pulled back. The builder reaches its engine through the ``build.engine`` setting
over loopback TCP: a second dockerd of its own listening on 127.0.0.1 only (the session fixture
``second_engine``, ``tests/support/dockerd.py``), so an image built there is absent from the
engine running here.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import docker
import docker.errors
import httpx
import pytest

from racetrack_core.errors import RacetrackError
from racetrack_core.images import BuilderSettings, ImageBuilder
from racetrack_core.infrastructure import DeployError, JobSpec, TargetContext
from racetrack_core.recipes import BuildSettings, ImageContext, Recipes
from racetrack_core.registry import JobType
from racetrack_plugins.k8s_infra import KubernetesDriver
from racetrack_plugins.k8s_infra.image_registry import RegistrySettings
from tests.support.dockerd import SecondEngine

from .conftest import NAMESPACE, write_kubeconfig
from .emulator import RunningEmulator

REGISTRY_BINARY = Path("/usr/bin/docker-registry")
DOCKER_CLI = Path("/usr/bin/docker")
REPOSITORY = "racetrack-test-k8s"
USER = "racetrack-pusher"
MANIFESTS = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    ]
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Registry:
    """A docker-registry process on 127.0.0.1 with one htpasswd account."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(16)
        hashed = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(rounds=5)).decode()
        (root / "htpasswd").write_text(f"{USER}:{hashed}\n")
        config = {
            "version": 0.1,
            "log": {"level": "warn"},
            "storage": {"filesystem": {"rootdirectory": str(root / "data")}},
            "http": {"addr": self.address},
            "auth": {"htpasswd": {"realm": "racetrack-test", "path": str(root / "htpasswd")}},
        }
        (root / "config.yml").write_text(json.dumps(config))  # JSON is YAML too
        self.log = (root / "registry.log").open("wb")
        self.process = subprocess.Popen(
            [str(REGISTRY_BINARY), "serve", str(root / "config.yml")],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://{self.address}/v2/", trust_env=False).status_code == 401:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"docker-registry did not start: see {root}/registry.log")
            time.sleep(0.1)

    def manifest(self, name: str, reference: str, auth: bool = True) -> httpx.Response:
        return httpx.get(
            f"http://{self.address}/v2/{name}/manifests/{reference}",
            headers={"Accept": MANIFESTS},
            auth=(USER, self.password) if auth else None,
            trust_env=False,
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.log.close()


class TinyImage:
    """An image recipe with nothing to pull: ``FROM scratch`` and one file."""

    def render(
        self, spec: JobSpec, directory: Path, secrets_dir: Path, settings: BuildSettings
    ) -> ImageContext:
        (directory / "hello.txt").write_text(f"hello from {spec.name} {spec.deployment_id}\n")
        (directory / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
        return ImageContext(directory=directory, base_image="scratch", port=7000)


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except docker.errors.DockerException as error:
        pytest.skip(f"no Docker engine: {error}")
    if not DOCKER_CLI.is_file():
        pytest.skip(f"{DOCKER_CLI} (a docker CLI with BuildKit) is not installed")
    yield client
    _remove_images(client)
    client.close()


def _remove_images(client: Any) -> None:
    for image in client.images.list():
        # Built ones are tagged; ones pulled back by digest have only a repository digest.
        names = [*image.tags, *(image.attrs.get("RepoDigests") or [])]
        if any(f"/{REPOSITORY}/" in name or name.startswith(REPOSITORY) for name in names):
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(image.id, force=True)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    if not REGISTRY_BINARY.is_file():
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    running = Registry(tmp_path_factory.mktemp("registry"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def tcp_engine(engine: Any, second_engine: SecondEngine) -> Iterator[Any]:
    """The second engine's SDK client; this module's images on it are removed afterwards."""
    client = second_engine.client()
    yield client
    _remove_images(client)
    client.close()


def tiny_spec(tmp_path: Path, deployment_id: str) -> JobSpec:
    return JobSpec(
        name="tiny",
        version="1.0.0",
        manifest={},
        job_type=JobType("tiny", "1.0.0", recipes=Recipes(image=TinyImage())),
        workspace=tmp_path,
        env={"JOB_NAME": "tiny"},
        deployment_id=deployment_id,
        deployment_timestamp=100,
        state_dir=tmp_path / "state",
    )


def make_driver(
    tmp_path: Path,
    emulator: RunningEmulator,
    registry: Registry,
    engine: str | None = None,
    **credentials: str,
) -> KubernetesDriver:
    """A driver whose registry is ``registry`` (its password in a file, unless ``credentials``
    say otherwise) and whose builder reaches ``engine`` (None: the default one)."""
    if not credentials:
        password_file = tmp_path / "registry-password"
        password_file.write_text(registry.password + "\n")
        credentials = {"password_file": str(password_file)}
    build = {"repository": REPOSITORY, **({"engine": engine} if engine else {})}
    settings = {
        "auth": "kubeconfig",
        "kubeconfig": str(write_kubeconfig(tmp_path / "kubeconfig", emulator.url)),
        "namespace": NAMESPACE,
        "image_pull_secret": "registry-login",
        "registry": {
            "address": f"{registry.address}/{REPOSITORY}",
            "username": USER,
            **credentials,
        },
        "build": build,
    }
    return KubernetesDriver(TargetContext(tmp_path / "home", settings))


def test_a_built_image_is_pushed_deployed_by_digest_and_pulled_back(
    engine: Any,
    tcp_engine: Any,
    second_engine: SecondEngine,
    registry: Registry,
    emulator: RunningEmulator,
    tmp_path: Path,
) -> None:
    deployment_id = "a1" + secrets.token_hex(15)
    driver = make_driver(tmp_path, emulator, registry, engine=second_engine.host)
    log: list[str] = []
    spec = tiny_spec(tmp_path, deployment_id)
    driver.prepare(spec, log.append)
    driver.start(spec)
    # The build and the push went to the engine on loopback TCP, not to the one running here.
    local = driver.builder.tag_of(spec)
    built_id = tcp_engine.images.get(local).id
    with pytest.raises(docker.errors.ImageNotFound):
        engine.images.get(local)

    [deployment] = emulator.stored("deployments")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    name = f"{REPOSITORY}/tiny"
    assert image.startswith(f"{registry.address}/{name}@sha256:")
    digest = image.rpartition("@")[2]
    assert f"pushed image {image}" in log
    assert not any(registry.password in line for line in log)

    # The registry holds it under that digest, and only for its account.
    stored = registry.manifest(name, digest)
    assert stored.status_code == 200
    assert stored.headers["Docker-Content-Digest"] == digest
    assert registry.manifest(name, digest, auth=False).status_code == 401
    # The registry tag was only for the push: the engine keeps the builder's tag alone.
    with pytest.raises(docker.errors.ImageNotFound):
        tcp_engine.images.get(f"{registry.address}/{name}:1.0.0-{deployment_id}")

    # Pulled back by digest into an engine without it, it is the image that was built.
    tcp_engine.images.remove(local, force=True)
    with pytest.raises(docker.errors.ImageNotFound):
        tcp_engine.images.get(built_id)
    auth = {"username": USER, "password": registry.password}
    pulled = tcp_engine.images.pull(image, auth_config=auth)
    assert pulled.id == built_id  # the id is the digest of the image's config and layers
    assert image in pulled.attrs["RepoDigests"]
    driver.close()


def test_a_refused_push_says_so_without_the_password(
    engine: Any, registry: Registry, emulator: RunningEmulator, tmp_path: Path
) -> None:
    driver = make_driver(tmp_path, emulator, registry, password="wrong-pw-93")
    spec = tiny_spec(tmp_path, "b2" + secrets.token_hex(15))
    with pytest.raises(DeployError, match=r"pushing image 127\.0\.0\.1:\d+/.*/tiny:.* failed") as e:
        driver.prepare(spec, lambda line: None)
    assert "wrong-pw-93" not in str(e.value)
    assert "auth" in str(e.value).lower()
    assert emulator.stored("deployments") == []
    driver.close()


def test_an_unreachable_engine_names_the_setting(
    registry: Registry, emulator: RunningEmulator, tmp_path: Path
) -> None:
    driver = make_driver(tmp_path, emulator, registry, engine=f"tcp://127.0.0.1:{free_port()}")
    with pytest.raises(DeployError, match=r"Set targets.kubernetes.build.engine"):
        driver._image_registry()


def test_registry_settings_are_checked() -> None:
    with pytest.raises(RacetrackError, match=r"registry.address: name the registry"):
        RegistrySettings.from_mapping({"username": "u"})
    with pytest.raises(RacetrackError, match=r"password or password_file, not both"):
        RegistrySettings.from_mapping({"address": "r:5000", "password": "p", "password_file": "f"})
    with pytest.raises(RacetrackError, match=r"registry: unknown setting 'user'"):
        RegistrySettings.from_mapping({"address": "r:5000", "user": "u"})
    settings = RegistrySettings.from_mapping(
        {"address": "r:5000/", "username": "u", "password": "p"}
    )
    assert settings.address == "r:5000"
    assert settings.auth_config() == {"username": "u", "password": "p"}
    hidden = RegistrySettings.from_mapping({"address": "r", "username": "u", "password": "pw-77"})
    assert "pw-77" not in repr(hidden)


def test_the_builder_reaches_its_engine_through_the_engine_setting(
    engine: Any, tcp_engine: Any, second_engine: SecondEngine, tmp_path: Path
) -> None:
    settings = BuilderSettings.from_mapping(
        {"repository": REPOSITORY, "engine": second_engine.host}, "build"
    )
    built = ImageBuilder(settings, tmp_path / "builds").build(
        tiny_spec(tmp_path, "c3" + secrets.token_hex(15)), lambda line: None
    )
    # The docker CLI built on the engine the setting names, over loopback TCP.
    assert tcp_engine.images.get(built.tag).labels["racetrack.job"] == "tiny"
    with pytest.raises(docker.errors.ImageNotFound):
        engine.images.get(built.tag)


def test_restore_writes_a_vanished_job_again_from_a_fresh_build(
    engine: Any, emulator: RunningEmulator, tmp_path: Path
) -> None:
    """Without a registry the pods name the builder's tag (a node sharing the engine)."""
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", emulator.url)
    settings: dict[str, Any] = {"kubeconfig": str(kubeconfig), "auth": "kubeconfig"}
    settings |= {"namespace": NAMESPACE, "build": {"repository": REPOSITORY}}
    driver = KubernetesDriver(TargetContext(tmp_path / "home", settings))
    spec = tiny_spec(tmp_path, "e5" + secrets.token_hex(15))
    recorded = driver.start(spec)  # as the job record remembers it
    driver.delete(spec.name, spec.version)  # then someone removed it from the cluster
    restored = driver.restore(spec, recorded)
    assert restored == recorded
    [deployment] = emulator.stored("deployments")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == driver.builder.tag_of(spec)
    assert engine.images.get(image).labels["racetrack.deployment"] == spec.deployment_id
    driver.close()


class WrappedImage(TinyImage):
    """An image asking for a network wrapper, as the docker-proxy job type's do."""

    def render(
        self, spec: JobSpec, directory: Path, secrets_dir: Path, settings: BuildSettings
    ) -> ImageContext:
        context = super().render(spec, directory, secrets_dir, settings)
        dockerfile = directory / "Dockerfile"
        dockerfile.write_text(dockerfile.read_text() + 'LABEL racetrack.network-wrapper="/w"\n')
        return context


def test_an_image_that_needs_a_network_wrapper_is_refused(
    engine: Any, emulator: RunningEmulator, tmp_path: Path
) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", emulator.url)
    settings: dict[str, Any] = {"kubeconfig": str(kubeconfig), "auth": "kubeconfig"}
    settings |= {"namespace": NAMESPACE, "build": {"repository": REPOSITORY}}
    driver = KubernetesDriver(TargetContext(tmp_path / "home", settings))
    spec = tiny_spec(tmp_path, "f6" + secrets.token_hex(15))
    spec = JobSpec(**{**spec.__dict__, "job_type": JobType("wrapped", "1.0.0",
                   recipes=Recipes(image=WrappedImage()))})  # fmt: skip
    with pytest.raises(DeployError, match=r"network wrapper .* deploy it to the docker target"):
        driver.prepare(spec, lambda line: None)
    assert emulator.stored("deployments") == []
    driver.close()
