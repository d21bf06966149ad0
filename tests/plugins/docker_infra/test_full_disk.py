"""The disk full while the Docker target builds an image: a real engine on a small tmpfs.

A second dockerd (``tests/support/dockerd.py``) keeps its data root on a tmpfs of
``TMPFS_SIZE``, large enough for the python3 base image and one job image. A job version is
built and started there; then a redeploy whose source holds a file larger than the space
left fails its build. The failure must be a ``DeployError`` that says the disk is full, the
replica already serving must go on answering, the engine must go on working, and once the
large file is gone the same build must succeed. (It failed: BuildKit kept the failed build's
copy of its source, 400 MiB, so the disk stayed full for every later build.)
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from racetrack_core.infrastructure import DeployError, JobSpec, TargetContext
from racetrack_core.lifecycle.ports import DatabasePorts
from racetrack_core.registry import JobType
from racetrack_core.storage.database import connect, migrate
from racetrack_plugins.docker_infra import DockerDriver
from racetrack_plugins.python3 import RECIPES
from tests.conftest import in_ci
from tests.plugins.docker_infra.conftest import CA_BUNDLE, REPO
from tests.support.dockerd import SecondEngine, start_second_engine, unavailable

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

#: The base image and one job image take about 190 MiB; a build needs more while it runs.
TMPFS_SIZE = "640m"
#: Zeros: a few hundred KiB compressed, far more than the tmpfs has left once unpacked.
FILLER_BYTES = 400 * 1024 * 1024


@pytest.fixture
def small_engine(tmp_path: Path) -> Iterator[SecondEngine]:
    reason = unavailable()
    if reason is not None:
        if in_ci():
            pytest.fail(f"CI=true needs a second Docker engine: {reason}")
        pytest.skip(reason)
    data_root = tmp_path / "engine" / "data"
    data_root.mkdir(parents=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=711", "racetrack-test", data_root],
        check=True,
    )
    try:
        engine = start_second_engine(data_root)
        try:
            yield engine
        finally:
            engine.stop()
    finally:
        subprocess.run(["umount", "--lazy", str(data_root)], check=False)


def answers(url: str, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, trust_env=False, timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    return False


def spec_of(workspace: Path, deployment: int, state: Path) -> JobSpec:
    return JobSpec(
        name="primer",
        version="0.0.1",
        manifest={"jobtype_extra": {"entrypoint_path": "entrypoint.py"}},
        job_type=JobType("python3", "1.0.0", recipes=RECIPES),
        workspace=workspace,
        env={
            "JOB_NAME": "primer",
            "JOB_VERSION": "0.0.1",
            "JOB_DEPLOYMENT_TIMESTAMP": str(deployment),
        },
        deployment_id=f"d{deployment}",
        deployment_timestamp=deployment,
        state_dir=state,
    )


def test_an_image_build_on_a_full_disk_fails_cleanly_while_the_old_replica_serves(
    small_engine: SecondEngine, base_image: str, tmp_path: Path
) -> None:
    small_engine.load(base_image)
    database = connect(f"sqlite:///{tmp_path / 'ports.db'}")
    migrate(database)
    settings = {
        "base_url": small_engine.host,
        "drain_seconds": 0,
        "stop_grace_seconds": 2,
        "build": {
            "engine": small_engine.host,
            "ca_bundle": str(CA_BUNDLE),
            "repository": "racetrack-test-fulldisk",
            "base_images": {"python:3.11-slim": base_image},
        },
    }
    driver = DockerDriver(
        TargetContext(tmp_path / "home", settings, ports=DatabasePorts(database, "docker"))
    )
    workspace = tmp_path / "primer"
    shutil.copytree(REPO / "sample" / "python-primer", workspace)
    log: list[str] = []
    try:
        first = spec_of(workspace, 1, tmp_path / "state")
        driver.prepare(first, log.append)
        serving = driver.start(first)
        assert answers(serving.url + "/live", within=60)

        with (workspace / "weights.bin").open("wb") as filler:
            filler.truncate(FILLER_BYTES)
        with pytest.raises(DeployError) as failed:
            driver.prepare(spec_of(workspace, 2, tmp_path / "state"), log.append)
        message = str(failed.value)
        print(f"the build on a full disk: {message}")
        assert "the Docker engine's disk is full" in message, message
        assert "no space left on device" in message, message
        assert "build contexts its build cache kept were removed" in message, message
        assert small_engine.cli("version", "--format", "{{.Server.Version}}") != ""
        assert answers(serving.url + "/live", within=5), "the serving replica stopped answering"

        (workspace / "weights.bin").unlink()
        third = spec_of(workspace, 3, tmp_path / "state")
        # The failed build's copy of its source no longer fills the engine's disk.
        driver.prepare(third, log.append)
    finally:
        small_engine.remove_containers()
        driver.client.close()
        database.dispose()
