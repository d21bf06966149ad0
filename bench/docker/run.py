"""``sample/python-primer`` on the Docker target, side by side with the local target, in one run.

Usage: ``.venv/bin/python bench/docker/run.py [--base-image IMAGE]``

Drives each target's driver directly (``prepare``, then ``start``, until ``/live`` answers with
the deployment's timestamp), so that both are timed the same way, without a server around them:

- **first deploy**: Docker builds the image with ``--no-cache`` FROM a local base image (default
  ``racetrack/python3-base:bookworm``, made from Debian packages; no registry is needed), the
  host's CA bundle given to the build, BuildKit's pip cache mount as earlier builds left it; the
  local target builds a new environment in a fresh home with uv, from uv's cache as it is;
- **unchanged redeploy**: the same source again (Docker's layer cache; the local environment
  reused);
- **image size** (the local target has none: its environments are shared folders);
- **idle memory**, read ``IDLE_S`` seconds after the redeploy: the RSS of the job's process tree
  on both targets (``VmRSS`` in ``/proc``; a container's processes are the host's too), and the
  container's own memory use as Docker counts it (``docker stats``: its cgroup, page cache
  included), which is what a container's memory limit applies to.

Prints a markdown report on stdout, with the ratios docker / local; progress on stderr. Every
container and image it makes carries the labels of its own temporary home and is removed at the
end, and the local target's processes are stopped by its driver.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import httpx

from racetrack_core.infrastructure import InfrastructureDriver, JobSpec, Replica, TargetContext
from racetrack_core.registry import JobType
from racetrack_plugins.docker_infra import DockerDriver
from racetrack_plugins.local_infra import LocalDriver
from racetrack_plugins.local_infra.records import Records
from racetrack_plugins.python3 import RECIPES

ROOT = Path(__file__).resolve().parents[2]
PRIMER_DIR = ROOT / "sample" / "python-primer"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
REPOSITORY = "racetrack-bench-job"
#: The Docker target's goals (issue 11).
GOALS = {"first": 20.0, "unchanged": 3.0, "size": 200.0, "container": 60.0}
IDLE_S = 3.0


def say(text: str) -> None:
    print(f"  {text}", file=sys.stderr)


def spec(home: Path, deployment: str, timestamp: int, no_cache: bool = False) -> JobSpec:
    return JobSpec(
        name="primer",
        version="0.0.1",
        manifest={"jobtype_extra": {"entrypoint_path": "entrypoint.py"}},
        job_type=JobType("python3", "1.0.0", recipes=RECIPES),
        workspace=PRIMER_DIR,
        env={
            "JOB_NAME": "primer",
            "JOB_VERSION": "0.0.1",
            "JOB_DEPLOYMENT_TIMESTAMP": str(timestamp),
        },
        deployment_id=deployment,
        deployment_timestamp=timestamp,
        state_dir=home / "state",
        no_cache=no_cache,
    )


def deploy(driver: InfrastructureDriver, job: JobSpec) -> tuple[float, Replica]:
    """Seconds from ``prepare`` to ``/live`` answering with the deployment's timestamp."""
    started = time.monotonic()
    driver.prepare(job, lambda line: None)
    replica = driver.start(job)
    with httpx.Client(timeout=2, trust_env=False) as client:
        while True:
            try:
                live = client.get(replica.url + "/live").json()
                if live.get("deployment_timestamp") == job.deployment_timestamp:
                    return time.monotonic() - started, replica
            except httpx.HTTPError:
                pass
            if time.monotonic() - started > 300:
                raise SystemExit("the job did not answer /live within 300 s")
            time.sleep(0.05)


def rss_bytes(pid: int) -> int:
    """VmRSS of a process and, recursively, of its children."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        for line in Path(f"/proc/{current}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
        for task in Path(f"/proc/{current}/task").iterdir():
            listing = task / "children"
            if listing.exists():
                pending += [int(child) for child in listing.read_text().split()]
    return total


@dataclass
class Measured:
    first: float
    unchanged: float
    rss: float
    size: float | None = None
    container: float | None = None


def measure(make: Callable[[Path], InfrastructureDriver], no_cache: bool) -> Measured:
    """First deploy and unchanged redeploy on a fresh home of a target, then idle memory."""
    home = Path(tempfile.mkdtemp(prefix="racetrack-bench-docker-"))
    driver = make(home)
    try:
        say("first deploy")
        first, replica = deploy(driver, spec(home, "b1", 1, no_cache=no_cache))
        say("redeploy of the unchanged source")
        unchanged, newer = deploy(driver, spec(home, "b2", 2))
        driver.retire(replica)
        time.sleep(IDLE_S)
        if isinstance(driver, DockerDriver):
            return measure_container(driver, home, newer, first, unchanged)
        record = Records(home).load(newer.id)  # the local target's pid file of the replica
        assert record is not None, newer
        return Measured(first, unchanged, rss_bytes(record.pid) / 1e6)
    finally:
        driver.delete("primer", "0.0.1")
        driver.close()
        shutil.rmtree(home, ignore_errors=True)


def measure_container(
    driver: DockerDriver, home: Path, replica: Replica, first: float, unchanged: float
) -> Measured:
    client = docker.from_env()
    try:
        image = client.images.get(driver.builder.tag_of(spec(home, "b2", 2)))
        [container] = client.containers.list(filters={"name": replica.id})
        usage = container.stats(stream=False)["memory_stats"].get("usage", 0)
        pid = int(container.attrs["State"]["Pid"])
        return Measured(
            first, unchanged, rss_bytes(pid) / 1e6, image.attrs["Size"] / 1e6, usage / 1e6
        )
    finally:
        client.close()


def docker_driver(base_image: str) -> Callable[[Path], InfrastructureDriver]:
    def make(home: Path) -> InfrastructureDriver:
        settings: dict[str, Any] = {
            "drain_seconds": 0,
            "build": {
                "repository": REPOSITORY,
                "base_images": {"python:3.11-slim": base_image},
                **({"ca_bundle": str(CA_BUNDLE)} if CA_BUNDLE.is_file() else {}),
            },
        }
        return DockerDriver(TargetContext(home, settings))

    return make


def local_driver(home: Path) -> InfrastructureDriver:
    return LocalDriver(TargetContext(home, {"drain_seconds": 0}))


def report(base_image: str, local: Measured, docker_: Measured) -> str:
    def met(value: float, goal: float) -> str:
        return "met" if value < goal else "**not met**"

    rows = [
        f"### Docker target beside the local target (`sample/python-primer` FROM `{base_image}`)",
        "",
        "| what | local | docker | docker / local | docker's goal | met |",
        "|---|---:|---:|---:|---|---|",
        f"| first deploy, build to `/live` (s) | {local.first:.1f} | {docker_.first:.1f} "
        f"| {docker_.first / local.first:.1f} | under {GOALS['first']:g} "
        f"| {met(docker_.first, GOALS['first'])} |",
        f"| redeploy of unchanged source (s) | {local.unchanged:.1f} | {docker_.unchanged:.1f} "
        f"| {docker_.unchanged / local.unchanged:.1f} | under {GOALS['unchanged']:g} "
        f"| {met(docker_.unchanged, GOALS['unchanged'])} |",
        f"| image size (MB) | none | {docker_.size or 0:.0f} | | under {GOALS['size']:g} "
        f"| {met(docker_.size or 0, GOALS['size'])} |",
        f"| idle container, `docker stats` (MB) | none | {docker_.container or 0:.0f} | "
        f"| under {GOALS['container']:g} | {met(docker_.container or 0, GOALS['container'])} |",
        f"| idle RSS of the job's process tree (MB) | {local.rss:.0f} | {docker_.rss:.0f} "
        f"| {docker_.rss / local.rss:.1f} | | |",
        "",
        "Each target's driver is driven directly: `prepare`, then `start`, until `/live` "
        "answers with the deployment's timestamp. Docker's first build uses `--no-cache` (the "
        "base image present; BuildKit's pip cache mount as earlier builds left it); the local "
        "target's first deploy builds a new environment in a fresh home from uv's cache. Memory "
        f"is read {IDLE_S:g} s after the redeploy, before any call.",
    ]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--base-image", default="racetrack/python3-base:bookworm")
    options = parser.parse_args()
    say("local target")
    local = measure(local_driver, no_cache=False)
    say("docker target")
    on_docker = measure(docker_driver(options.base_image), no_cache=True)
    print(report(options.base_image, local, on_docker))


if __name__ == "__main__":
    main()
