"""A third-party job type on the Docker target: the sample plugin's image recipe, built by the
same image builder and run by the same driver as python3's."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from racetrack_core.registry import JobTypeRegistry
from tests.plugins.docker_infra.conftest import Jobs
from tests.samples.hello import SAMPLE, hello_base_image


@pytest.fixture(scope="module")
def hello() -> Iterator[ModuleType]:
    sys.path.insert(0, str(SAMPLE))
    try:
        import racetrack_hello_jobtype

        yield racetrack_hello_jobtype
    finally:
        sys.path.remove(str(SAMPLE))


def test_the_hello_job_type_runs_in_a_container(
    jobs: Jobs, hello: ModuleType, tmp_path: Path
) -> None:
    hello_base_image(tmp_path)  # FROM the image its recipe declares, bootstrapped from Debian
    registry = JobTypeRegistry()
    hello.register_job_types(registry=registry.registrar("hello"))
    spec = jobs.spec(
        name="greeter",
        version="1.0.0",
        deployment_id="h1",
        job_type=registry.resolve("hello:latest"),
        manifest={"jobtype_extra": {"greeting": "Hello from a container"}},
    )
    driver = jobs.driver()
    driver.prepare(spec, jobs.build_log.append)
    replica = driver.start(spec)
    live = jobs.wait_until(lambda: jobs.live(replica.url), f"{replica.url}/live")
    assert live == {"live": True, "deployment_timestamp": 100}
    answer = jobs.http.post(replica.url + "/pub/job/greeter/1.0.0/perform").json()
    assert answer == {"greeting": "Hello from a container", "job_type": "hello:1.0.0"}
    driver.delete("greeter", "1.0.0")
