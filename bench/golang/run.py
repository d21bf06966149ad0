"""Measure the golang job type (and docker-proxy's images): throughput, deploy times, sizes.

Usage: ``.venv/bin/python bench/golang/run.py [--duration 5] [--repeats 2] [--go-image IMAGE]
[--base-image racetrack/python3-base:bookworm]``

In one run, side by side:

1. ``sample/golang-primer`` built by the golang process recipe (the host's ``go``) and called
   directly, against ``bare/main.go``, a bare ``net/http`` handler doing the same work (JSON
   object in, prime check, JSON out): ``wrk -c32 -t2`` POSTs, ``--repeats`` runs each in turn,
   then ``-c1`` for p50. Goal: the wrapper at least 0.9 of the bare server's requests/s.
2. Through Pub (a real ``racetrack up`` on free ports, the local target): the golang job
   against ``sample/python-primer``, same body, same ``wrk`` settings.
3. Deploy times through the Lifecycle API (request to ``done``): ``golang-primer`` on the local
   target (first, then an unchanged redeploy) and on the Docker target (first with
   ``--no-cache``, then unchanged), ``sample/docker-proxy`` on Docker the same way; the size of
   each Docker image.

The Docker part needs the engine, ``/usr/bin/docker`` (BuildKit) and a Go builder image:
``--go-image`` or the newest image labelled ``racetrack-test=golang-image`` (which
``tests/plugins/golang/test_image.py`` makes from the host's Go), mapped from
``golang:1.19-bookworm`` through the target's ``build.base_images``. Prints markdown on
stdout, progress on stderr; every process is stopped by its pid, every container and image it
made is removed by its labels.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from racetrack_core.infrastructure import JobSpec  # noqa: E402
from racetrack_core.recipes import Recipes  # noqa: E402
from racetrack_core.registry import JobType  # noqa: E402
from racetrack_core.testing.server import RacetrackServer  # noqa: E402
from racetrack_plugins.docker_infra.containers import LABEL_HOME, home_digest  # noqa: E402
from racetrack_plugins.golang.image import DEFAULT_BUILDER_IMAGE  # noqa: E402
from racetrack_plugins.golang.process import GolangProcessRecipe  # noqa: E402

GOLANG = ROOT / "sample" / "golang-primer"
PYTHON = ROOT / "sample" / "python-primer"
PROXY = ROOT / "sample" / "docker-proxy"
PATH = "/api/v1/perform"
BODY = b'{"number": 7907}'
RATIO_GOAL = 0.9
DOCKER = "/usr/bin/docker"
REPOSITORY = "racetrack-bench-golang"


def say(text: str) -> None:
    print(f"  {text}", file=sys.stderr)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wrk(url: str, connections: int, duration: int, token: str = "") -> tuple[float, float]:
    """Requests per second and p50 (ms) of one wrk run; errors stop the benchmark."""
    threads = 2 if connections > 1 else 1
    args = ["wrk", f"-c{connections}", f"-t{threads}", f"-d{duration}s", "--latency"]
    args += ["-s", str(HERE / "post.lua"), url]
    env = {**os.environ, "RACETRACK_TOKEN": token}
    text = subprocess.run(args, capture_output=True, text=True, check=True, env=env).stdout
    if "Non-2xx" in text or "Socket errors" in text:
        raise SystemExit(f"wrk saw errors against {url}:\n{text}")
    rps = float(text.split("Requests/sec:")[1].split()[0])
    p50_text = next(line.split()[1] for line in text.splitlines() if line.strip().startswith("50%"))
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    unit = next(u for u in ("us", "ms", "s") if p50_text.endswith(u))
    return rps, float(p50_text[: -len(unit)]) * scale[unit]


def wait_for(url: str, token: str = "", timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    headers = {"Content-Type": "application/json", "X-Racetrack-Auth": token}
    request = urllib.request.Request(url, data=BODY, headers=headers)  # noqa: S310
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(request, timeout=2) as answer:  # noqa: S310
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout} s")


@contextmanager
def process(command: list[str], env: dict[str, str], log: Path) -> Iterator[None]:
    with log.open("ab") as output:
        child = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        yield
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def golang_spec(work: Path) -> JobSpec:
    job_type = JobType("golang", "1.0.0", recipes=Recipes(process=GolangProcessRecipe()))
    return JobSpec(
        name="golang-primer", version="0.0.1", manifest={"jobtype": "golang:latest"},
        job_type=job_type, workspace=GOLANG, env={}, deployment_id="bench",
        deployment_timestamp=1, state_dir=work / "state",
    )  # fmt: skip


def side_by_side(
    targets: dict[str, str], duration: int, repeats: int, token: str = ""
) -> dict[str, tuple[float, float]]:
    """Median c32 requests/s over ``repeats`` runs taken in turn, and the c1 p50, per target."""
    rates: dict[str, list[float]] = {name: [] for name in targets}
    for turn in range(repeats):
        for name, url in targets.items():
            say(f"{name}: wrk -c32, run {turn + 1} of {repeats}")
            rates[name].append(wrk(url, 32, duration, token)[0])
    return {
        name: (statistics.median(rates[name]), wrk(url, 1, duration, token)[1])
        for name, url in targets.items()
    }


def wrapper_against_bare(work: Path, duration: int, repeats: int) -> dict[str, tuple[float, float]]:
    go = shutil.which("go")
    if go is None:
        raise SystemExit("go is not installed (Debian package golang-go)")
    say("building the golang-primer job and the bare server")
    spec, recipe = golang_spec(work), GolangProcessRecipe()
    env_dir = work / "env"
    env_dir.mkdir()
    recipe.build(spec, env_dir, lambda line: None)
    bare = work / "bare"
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod", "GOPROXY": "off"}
    subprocess.run([go, "build", "-o", str(bare), "."], cwd=HERE / "bare", env=env, check=True)
    ports = {"wrapper": free_port(), "bare": free_port()}
    job_env = {"PATH": os.environ["PATH"], "JOB_NAME": "golang-primer", "JOB_VERSION": "0.0.1"}
    wrapper_command = recipe.command(spec, env_dir, ports["wrapper"])
    with (
        process(wrapper_command, {**job_env, "JOB_PORT": str(ports["wrapper"])}, work / "w.log"),
        process([str(bare), "-port", str(ports["bare"])], job_env, work / "b.log"),
    ):
        urls = {name: f"http://127.0.0.1:{port}{PATH}" for name, port in ports.items()}
        for url in urls.values():
            wait_for(url)
        return side_by_side(urls, duration, repeats)


def go_image(given: str | None) -> str | None:
    if given:
        return given
    done = subprocess.run(
        [DOCKER, "images", "--filter", "label=racetrack-test=golang-image", "--format",
         "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True, check=False,
    )  # fmt: skip
    found = done.stdout.split()
    return found[0] if found else None


def deploy(server: RacetrackServer, folder: Path, **manifest: Any) -> float:
    flags = manifest.pop("build_flags", None)
    force = manifest.pop("force", False)
    started = time.monotonic()
    body: dict[str, Any] = {"force": force}
    if flags:
        body["build_flags"] = flags
    record = server.deploy_folder(folder, manifest=manifest, timeout=900, **body)
    if record["status"] != "done":
        raise SystemExit(f"deploying {folder.name} failed: {record.get('error')}")
    return time.monotonic() - started


def image_size(home: Path, job: str) -> float:
    label = f"{LABEL_HOME}={home_digest(home / 'targets' / 'docker')}"
    ids = subprocess.run(
        [DOCKER, "ps", "-q", "--filter", f"label={label}",
         "--filter", f"label=racetrack.job={job}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    image = subprocess.run(
        [DOCKER, "inspect", "--format", "{{.Image}}", ids[0]], capture_output=True, text=True,
        check=True,
    ).stdout.strip()  # fmt: skip
    size = subprocess.run(
        [DOCKER, "image", "inspect", "--format", "{{.Size}}", image], capture_output=True,
        text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return int(size) / 1e6


def clean_docker(home: Path) -> None:
    label = f"label={LABEL_HOME}={home_digest(home / 'targets' / 'docker')}"
    ids = subprocess.run([DOCKER, "ps", "-aq", "--filter", label], capture_output=True, text=True)
    for container in ids.stdout.split():
        subprocess.run([DOCKER, "rm", "-f", container], capture_output=True, check=False)
    names = subprocess.run(
        [DOCKER, "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True
    )
    for image in names.stdout.split():
        if image.startswith(f"{REPOSITORY}/"):
            subprocess.run([DOCKER, "image", "rm", "-f", image], capture_output=True, check=False)


def through_pub_and_deploys(work: Path, options: argparse.Namespace) -> dict[str, Any]:
    home = work / "home"
    home.mkdir()
    builder = go_image(options.go_image)
    docker_ok = builder is not None and Path(DOCKER).is_file()
    if docker_ok:
        settings = {
            "drain_seconds": 0, "stop_grace_seconds": 2,
            "build": {"repository": REPOSITORY, "base_images": {
                DEFAULT_BUILDER_IMAGE: builder, "python:3.11-slim": options.base_image}},
        }  # fmt: skip
        (home / "config.yaml").write_text(json.dumps({"targets": {"docker": settings}}))
    env = {"RACETRACK_JOB_WATCH_INTERVAL": "0.5"}
    found: dict[str, Any] = {"docker": docker_ok}
    server = RacetrackServer(home, env=env, verbose=False)
    try:
        with server:
            server.login()
            say("deploying golang-primer and python-primer on the local target")
            found["local_first"] = deploy(server, GOLANG)
            found["local_unchanged"] = deploy(server, GOLANG, force=True)
            deploy(server, PYTHON)
            urls = {
                "golang-primer": f"{server.pub}/job/golang-primer/0.0.1{PATH}",
                "python-primer": f"{server.pub}/job/primer/0.0.1{PATH}",
            }
            for url in urls.values():
                wait_for(url, server.token)
            found["pub"] = side_by_side(urls, options.duration, options.repeats, server.token)
            if docker_ok:
                for name, folder, extra in (
                    ("golang", GOLANG, {"version": "0.0.2"}),
                    ("docker-proxy", PROXY, {}),
                ):
                    say(f"deploying {folder.name} on the Docker target")
                    manifest = {**extra, "infrastructure_target": "docker"}
                    found[f"{name}_first"] = deploy(
                        server, folder, build_flags=["--no-cache"], **manifest
                    )
                    found[f"{name}_unchanged"] = deploy(server, folder, force=True, **manifest)
                    job = "golang-primer" if name == "golang" else "docker-proxy"
                    found[f"{name}_size"] = image_size(home, job)
    finally:
        clean_docker(home)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--go-image", default=None)
    parser.add_argument("--base-image", default="racetrack/python3-base:bookworm")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="racetrack-bench-golang-"))
    try:
        direct = wrapper_against_bare(work, options.duration, options.repeats)
        found = through_pub_and_deploys(work, options)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratio = direct["wrapper"][0] / direct["bare"][0]
    met = "met" if ratio >= RATIO_GOAL else "**not met**"
    print("### golang job type\n")
    print("| goal | measured | met |")
    print("|---|---:|---|")
    print(f"| golang wrapper at least {RATIO_GOAL} of a bare `net/http` handler, c32 req/s | "
          f"{ratio:.2f} | {met} |")  # fmt: skip
    print('\nCalled directly (not through Pub), `wrk -t2`, POST `{"number": 7907}`:\n')
    print("| target | c32 req/s (median) | c1 p50 (ms) |")
    print("|---|---:|---:|")
    for name, label in (("bare", "bare `net/http` handler"), ("wrapper", "golang wrapper")):
        print(f"| {label} | {direct[name][0]:,.0f} | {direct[name][1]:.3f} |")
    pub = found["pub"]
    pub_ratio = pub["golang-primer"][0] / pub["python-primer"][0]
    print("\nThrough Pub (`racetrack up`, local target, a token on every call):\n")
    print("| job | c32 req/s (median) | c1 p50 (ms) |")
    print("|---|---:|---:|")
    for name in ("golang-primer", "python-primer"):
        print(f"| {name} | {pub[name][0]:,.0f} | {pub[name][1]:.3f} |")
    print(f"| golang / python3 | {pub_ratio:.2f} | |")
    print("\nDeploy times (API request to `done`) and image sizes:\n")
    print("| job, target | first (s) | unchanged redeploy (s) | image (MB) |")
    print("|---|---:|---:|---:|")
    print(f"| golang-primer, local | {found['local_first']:.1f} | "
          f"{found['local_unchanged']:.1f} | |")  # fmt: skip
    if found["docker"]:
        for name, label in (("golang", "golang-primer"), ("docker-proxy", "docker-proxy")):
            print(f"| {label}, docker (first: `--no-cache`) | {found[name + '_first']:.1f} | "
                  f"{found[name + '_unchanged']:.1f} | {found[name + '_size']:.1f} |")  # fmt: skip
    else:
        print("| docker | not measured: no Go builder image (see the script's docstring) | | |")


if __name__ == "__main__":
    main()
