"""Preparing environments: reuse by key, rebuild on no_cache, failed builds leave nothing."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from racetrack_core.infrastructure import DeployError
from racetrack_core.registry import JobType


def test_an_environment_is_built_once_and_reused(jobs):
    driver = jobs.driver()
    log: list[str] = []
    driver.prepare(jobs.spec(), log.append)
    driver.prepare(jobs.spec(version="2.0.0"), log.append)

    assert jobs.recipe.builds == 1
    env_dir = jobs.home / "envs" / jobs.recipe.environment_key(jobs.spec())
    assert (env_dir / "server.py").is_file()
    assert log[-1].startswith("reusing the environment script-base-")


def test_no_cache_rebuilds_the_environment(jobs):
    driver = jobs.driver()
    driver.prepare(jobs.spec(), jobs.build_log.append)
    driver.prepare(jobs.spec(no_cache=True), jobs.build_log.append)

    assert jobs.recipe.builds == 2
    assert [path.name for path in (jobs.home / "envs").iterdir() if path.name != ".locks"] == [
        jobs.recipe.environment_key(jobs.spec())
    ]


def test_a_failed_build_leaves_no_folder_and_says_why(jobs):
    driver = jobs.driver()
    spec = jobs.spec(manifest={"variant": "broken", "fail_build": True})

    with pytest.raises(DeployError, match="RuntimeError: the compiler gave up") as caught:
        driver.prepare(spec, jobs.build_log.append)

    assert "no module named 'frobnicate'" in caught.value.log_tail
    assert "hello 1.0.0" in str(caught.value)
    leftovers = [path.name for path in (jobs.home / "envs").iterdir() if path.name != ".locks"]
    assert leftovers == []


def test_concurrent_prepares_of_one_key_build_once(jobs):
    driver = jobs.driver()
    spec = jobs.spec(manifest={"build_seconds": 0.2})
    errors: list[BaseException] = []

    def prepare() -> None:
        try:
            driver.prepare(spec, lambda line: None)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=prepare) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert jobs.recipe.builds == 1


def test_a_job_type_without_a_process_recipe_is_refused(jobs):
    driver = jobs.driver()
    spec = replace(jobs.spec(), job_type=JobType(name="docker-proxy", version="1.0.0"))

    with pytest.raises(DeployError) as on_prepare:
        driver.prepare(spec, jobs.build_log.append)
    with pytest.raises(DeployError) as on_start:
        driver.start(spec)

    for caught in (on_prepare, on_start):
        message = str(caught.value)
        assert "job type 'docker-proxy:1.0.0' cannot run on the local target" in message
        assert "it offers no process recipe (it offers no recipes)" in message
