"""The sample plugin's recipes on a real target: the third-party side of the recipe contract.

The plugin is imported from its folder (no install needed); its process recipe runs on the
real ``local`` target, and its image recipe renders a context that container targets build.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from racetrack_core.infrastructure import JobSpec, TargetContext
from racetrack_core.recipes import (
    ArtifactKind,
    BuildSettings,
    DebianBase,
    DebianBasedRecipe,
    ImageRecipe,
    ProcessRecipe,
    debian_base_of,
)
from racetrack_core.registry import JobTypeRegistry
from racetrack_plugins.local_infra import LocalDriver

SAMPLE = Path(__file__).resolve().parents[2] / "sample" / "plugins" / "racetrack-hello-jobtype"


@pytest.fixture(scope="module")
def hello() -> Iterator[object]:
    sys.path.insert(0, str(SAMPLE))
    try:
        import racetrack_hello_jobtype

        yield racetrack_hello_jobtype
    finally:
        sys.path.remove(str(SAMPLE))


def spec_of(hello: object, root: Path) -> JobSpec:
    registry = JobTypeRegistry()
    hello.register_job_types(registry=registry.registrar("hello"))  # type: ignore[attr-defined]
    job_type = registry.resolve("hello:latest")
    workspace = root / "job"
    workspace.mkdir(parents=True, exist_ok=True)
    return JobSpec(
        name="greeter",
        version="1.0.0",
        manifest={"jobtype_extra": {"greeting": "Hello, world"}},
        job_type=job_type,
        workspace=workspace,
        env={"JOB_NAME": "greeter", "JOB_VERSION": "1.0.0", "JOB_DEPLOYMENT_TIMESTAMP": "42"},
        deployment_id="d1",
        deployment_timestamp=42,
        state_dir=root / "state",
    )


def test_the_sample_offers_both_kinds_through_the_protocols(hello: object, tmp_path: Path) -> None:
    job_type = spec_of(hello, tmp_path).job_type
    assert job_type.recipes.kinds() == {ArtifactKind.PROCESS, ArtifactKind.IMAGE}
    assert isinstance(job_type.recipes.process, ProcessRecipe)
    assert isinstance(job_type.recipes.image, ImageRecipe)


def test_the_process_recipe_serves_on_the_local_target(hello: object, tmp_path: Path) -> None:
    spec = spec_of(hello, tmp_path)
    driver = LocalDriver(TargetContext(tmp_path / "home", {"drain_seconds": 0.0}))
    try:
        driver.prepare(spec, lambda line: None)
        replica = driver.start(spec)
        deadline = time.monotonic() + 10
        with httpx.Client(trust_env=False, timeout=2) as client:
            while True:
                try:
                    live = client.get(replica.url + "/live").json()
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, driver.logs("greeter", "1.0.0")
                    time.sleep(0.05)
            assert live == {"live": True, "deployment_timestamp": 42}
            answer = client.post(replica.url + "/pub/job/greeter/1.0.0/perform").json()
            assert answer == {"greeting": "Hello, world", "job_type": "hello:1.0.0"}
        assert replica.url.startswith("http://127.0.0.1:")
    finally:
        driver.close()


def test_the_image_recipe_renders_a_context(hello: object, tmp_path: Path) -> None:
    spec = spec_of(hello, tmp_path)
    assert spec.job_type.recipes.image is not None
    (tmp_path / "ctx").mkdir()
    context = spec.job_type.recipes.image.render(
        spec, tmp_path / "ctx", tmp_path / "s", BuildSettings()
    )
    dockerfile = (context.directory / "Dockerfile").read_text()
    assert dockerfile.startswith("FROM racetrack/hello-base:bookworm\n")
    assert '"--greeting", "Hello, world", "--job-type", "hello:1.0.0"' in dockerfile
    assert "USER 65534\n" in dockerfile
    assert (context.directory / "server.py").is_file()
    assert context.port == 7000
    # A site's rewrite of the base image wins, as for every recipe.
    (tmp_path / "ctx2").mkdir()
    settings = BuildSettings(base_images={"racetrack/hello-base:bookworm": "mirror/hello:1"})
    rewritten = spec.job_type.recipes.image.render(
        spec, tmp_path / "ctx2", tmp_path / "s", settings
    )
    assert (rewritten.directory / "Dockerfile").read_text().startswith("FROM mirror/hello:1\n")


def test_the_image_recipe_declares_its_base_image(hello: object, tmp_path: Path) -> None:
    image: object = spec_of(hello, tmp_path).job_type.recipes.image
    assert isinstance(image, DebianBasedRecipe)
    assert debian_base_of(image) == DebianBase("racetrack/hello-base:bookworm", ("python3",))
