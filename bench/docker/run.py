"""Measure ``sample/python-primer`` on the Docker target: build times, image size, idle memory.

Usage: ``.venv/bin/python bench/docker/run.py [--base-image IMAGE]``

Drives the Docker target's driver (the image builder and the engine) directly, with the base
image rewritten to a local one (default ``racetrack/python3-base:bookworm``, from Debian
packages; no registry is needed) and the host's CA bundle given to the build. Measures a first
build with ``--no-cache`` (base image present) up to ``/live`` answering, a redeploy of the
unchanged source (layer cache), the image's size and the idle memory of the job's container
(``docker stats``). Prints a markdown report on stdout; progress on stderr. Every container and
image it makes carries the labels of its own temporary home and is removed at the end.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import docker
import httpx

from racetrack_core.infrastructure import JobSpec, Replica, TargetContext
from racetrack_core.registry import JobType
from racetrack_plugins.docker_infra import DockerDriver
from racetrack_plugins.python3 import RECIPES

ROOT = Path(__file__).resolve().parents[2]
PRIMER_DIR = ROOT / "sample" / "python-primer"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
REPOSITORY = "racetrack-bench-job"
GOALS = {"first": 20.0, "unchanged": 3.0, "size": 200.0, "memory": 60.0}
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


def deploy(driver: DockerDriver, job: JobSpec) -> tuple[float, Replica]:
    """Seconds from building to ``/live`` answering with the deployment's timestamp."""
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


def measure(base_image: str) -> dict[str, float]:
    home = Path(tempfile.mkdtemp(prefix="racetrack-bench-docker-"))
    settings: dict[str, Any] = {
        "drain_seconds": 0,
        "build": {
            "repository": REPOSITORY,
            "base_images": {"python:3.11-slim": base_image},
            **({"ca_bundle": str(CA_BUNDLE)} if CA_BUNDLE.is_file() else {}),
        },
    }
    driver = DockerDriver(TargetContext(home, settings))
    client = docker.from_env()
    try:
        say("first build (--no-cache)")
        first, replica = deploy(driver, spec(home, "b1", 1, no_cache=True))
        say("redeploy of the unchanged source")
        unchanged, newer = deploy(driver, spec(home, "b2", 2))
        driver.retire(replica)
        image = client.images.get(driver.builder.tag_of(spec(home, "b2", 2)))
        time.sleep(IDLE_S)
        [container] = client.containers.list(filters={"name": newer.id})
        memory = container.stats(stream=False)["memory_stats"].get("usage", 0)
        return {
            "first": first,
            "unchanged": unchanged,
            "size": image.attrs["Size"] / 1e6,
            "memory": memory / 1e6,
        }
    finally:
        driver.delete("primer", "0.0.1")
        driver.close()
        client.close()
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-image", default="racetrack/python3-base:bookworm")
    options = parser.parse_args()
    found = measure(options.base_image)
    rows = [
        ("first build and start, base image present (s)", "first", "{:.1f}"),
        ("redeploy of unchanged source, layer cache (s)", "unchanged", "{:.1f}"),
        ("image size (MB)", "size", "{:.0f}"),
        ("idle memory of the job's container (MB)", "memory", "{:.0f}"),
    ]
    print(f"### Docker target: `sample/python-primer` FROM `{options.base_image}`\n")
    print("| what | measured | goal | |")
    print("|---|---|---|---|")
    for label, key, shape in rows:
        met = "met" if found[key] < GOALS[key] else "**not met**"
        print(f"| {label} | {shape.format(found[key])} | under {GOALS[key]:g} | {met} |")


if __name__ == "__main__":
    main()
