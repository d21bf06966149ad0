"""The golang image, built by the real engine (BuildKit) and run with host networking.

The builder image is made here from the host's own Go (Debian's golang-go) and the few
programs the Dockerfile's shell steps use, with the libraries ``ldd`` lists: no registry, no
debootstrap. It is tagged with a hash of its inputs and reused between runs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets as secrets_module
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from racetrack_plugins.golang import build, image

from .conftest import SAMPLE, VENDORED_SAMPLE, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
DOCKER = "/usr/bin/docker"  # the CLI with BuildKit support (docker.io)
LABEL = "racetrack-test=golang-image"
TOOLS = ("/bin/sh", "/bin/mkdir", "/bin/cp", "/bin/rm", "/bin/chmod")


def docker(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DOCKER, *arguments], capture_output=True, text=True, check=False, env=env
    )


def _libraries(program: str) -> set[str]:
    done = subprocess.run(["ldd", program], capture_output=True, text=True, check=False)
    found: set[str] = set()
    for line in done.stdout.splitlines():
        parts = line.replace("=>", " ").split()
        found.update(part for part in parts if part.startswith("/"))
    return found


@pytest.fixture(scope="module")
def builder_image(go: str) -> str:
    """An image with the host's Go and a shell, imported from a tar of host files."""
    if shutil.which(DOCKER) is None or docker("info").returncode != 0:
        pytest.skip("no Docker engine")
    goroot = Path(subprocess.check_output([go, "env", "GOROOT"], text=True).strip()).resolve()
    go_binary = str(goroot / "bin" / "go")
    files = {go_binary, *TOOLS}
    for program in (go_binary, *TOOLS):
        files |= _libraries(program)
    key = hashlib.sha256(
        json.dumps(["v2", str(goroot), (goroot / "VERSION").read_text(), sorted(files)]).encode()
    )
    tag = f"racetrack-test-golang/builder:{key.hexdigest()[:12]}"
    if docker("image", "inspect", tag).returncode == 0:
        return tag
    buffer = io.BytesIO()
    # Debian's GOROOT links src/ and others into /usr/share: the tar holds the files, not links.
    with tarfile.open(fileobj=buffer, mode="w", dereference=True) as archive:
        for directory in ("tmp", "root"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777
            archive.addfile(info)
        for path in sorted(files):
            if not Path(path).is_relative_to(goroot):  # the Go tree comes whole, below
                archive.add(os.path.realpath(path), arcname=path.lstrip("/"))
        archive.add(goroot, arcname=str(goroot).lstrip("/"))
    done = subprocess.run(
        [
            DOCKER,
            "import",
            "--change",
            f"ENV PATH={goroot}/bin:/bin",
            "--change",
            "ENV HOME=/root",
            "--change",
            f"LABEL {LABEL}",
            "-",
            tag,
        ],
        input=buffer.getvalue(),
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return tag


@pytest.fixture
def built_images() -> Iterator[list[str]]:
    tags: list[str] = []
    yield tags
    for tag in tags:
        docker("image", "rm", "-f", tag)


def build_image(
    workspace: Path,
    context: Path,
    builder: str,
    tags: list[str],
    secrets: dict[str, dict[str, str]] | None = None,
) -> tuple[str, str]:
    image.write_image_context(workspace, "go.mod", context, builder)
    tag = f"racetrack-test-golang/{workspace.name}:{context.parent.name[-12:].lower()}"
    tags.append(tag)
    options = ["build", "--progress", "plain", "--network", "host", "--label", LABEL, "-t", tag]
    for name, values in (secrets or {}).items():
        path = image.settings_file(context.parent / "secrets" / name, values)
        options += ["--secret", f"id={name},src={path}"]
    done = docker(*options, str(context), env={**os.environ, "DOCKER_BUILDKIT": "1"})
    return tag, done.stdout + done.stderr if done.returncode == 0 else "FAILED\n" + done.stderr


def test_the_sample_image_is_small_and_answers_on_loopback(
    builder_image: str, built_images: list[str], tmp_path: Path
) -> None:
    tag, output = build_image(SAMPLE, tmp_path / "context", builder_image, built_images)
    assert not output.startswith("FAILED"), output
    size = json.loads(docker("image", "inspect", tag).stdout)[0]["Size"]
    assert size < 30 * 1024 * 1024
    history = docker("history", "--no-trunc", tag).stdout
    assert "COPY /out/ /" in history  # the last stage...
    assert "go build" not in history  # ...without the builder's layers or its steps

    port = free_port()
    name = f"racetrack-test-golang-{port}"
    started = docker(
        "run",
        "-d",
        "--rm",
        "--name",
        name,
        "--network",
        "host",
        "--label",
        LABEL,
        "-e",
        f"JOB_PORT={port}",
        "-e",
        "JOB_NAME=golang-primer",
        "-e",
        "JOB_VERSION=0.0.1",
        "-e",
        "JOB_DEPLOYMENT_TIMESTAMP=7",
        tag,
    )
    assert started.returncode == 0, started.stderr
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if client.get("/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, docker("logs", name).stderr
                    time.sleep(0.1)
            answer = client.post(
                "/pub/job/golang-primer/0.0.1/api/v1/perform", json={"number": 7907}
            )
            assert answer.json() is True
            assert client.get("/live").json() == {"live": True, "deployment_timestamp": 7}
            assert client.get("/swagger-ui/swagger-ui.css").status_code == 200
        inspected = json.loads(docker("inspect", name).stdout)[0]
        assert inspected["Config"]["User"] == "10001:10001"
    finally:
        docker("stop", "-t", "5", name)


def test_a_vendored_job_builds_with_no_network(
    builder_image: str, built_images: list[str], tmp_path: Path
) -> None:
    _, output = build_image(VENDORED_SAMPLE, tmp_path / "context", builder_image, built_images)
    assert not output.startswith("FAILED"), output


def test_go_settings_and_build_secrets_reach_the_build_and_stay_out_of_the_image(
    builder_image: str, built_images: list[str], tmp_path: Path
) -> None:
    job = tmp_path / "job"
    shutil.copytree(SAMPLE, job)
    with (job / "perform.go").open("a") as source:  # a change, so that no cached step is reused
        source.write(f"\n// {secrets_module.token_hex(8)}\n")
    secrets = {
        "go_settings": {"GOPROXY": "off", "GOPRIVATE": "example.com/private-marker"},
        "build_secrets": {"GOFLAGS": "-v", "API_TOKEN": "s3cret-build-value"},
    }
    tag, output = build_image(job, tmp_path / "context", builder_image, built_images, secrets)
    assert not output.startswith("FAILED"), output
    # go build -v (GOFLAGS from the secret file) names the packages it compiles: the changed one.
    assert re.search(r"^#\d+ [\d.]+ example\.com/racetrack/golang-primer$", output, re.M)
    kept = docker("history", "--no-trunc", tag).stdout + docker("image", "inspect", tag).stdout
    for value in ("s3cret-build-value", "private-marker"):
        assert value not in kept
        assert value not in output


def test_a_compile_error_fails_the_build_with_its_line(
    builder_image: str, built_images: list[str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(SAMPLE, broken)
    source = (broken / "perform.go").read_text().replace("return IsPrime(", "return isPrime(")
    (broken / "perform.go").write_text(source)
    _, output = build_image(broken, tmp_path / "context", builder_image, built_images)
    assert output.startswith("FAILED")
    assert "perform.go:19:9: undefined: isPrime" in output


def test_the_dockerfile_checks_loop_variables_only_when_the_meaning_changed(tmp_path: Path) -> None:
    prepared = build.prepare_source(SAMPLE, "go.mod", tmp_path / "src", image.DEFAULT_BUILDER_GO)
    dockerfile = image.render_dockerfile("b", prepared, tmp_path / "src", image.DEFAULT_BUILDER_GO)
    assert "-loopclosure" in dockerfile
    assert "WORKDIR /srv/job/.\n" in dockerfile
    newer = image.render_dockerfile("b", prepared, tmp_path / "src", (1, 22, 0), ["API_URL"])
    assert "-loopclosure" not in newer
    assert "ARG API_URL\n" in newer
