"""``racetrack images bootstrap`` against real debootstrap, a real engine and the shared cache.

These tests need root, debootstrap and a Docker engine; they skip without them outside CI
(``CI=true`` makes a skip fail the run, and ``.ci/run`` provides all three). Roots are kept in
the shared cache (setting ``base_images_cache``), so only the first run on a machine pays for
debootstrap; each test imports images under names of its own and removes them afterwards.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from racetrack_core import hookimpl
from racetrack_core.baseimages import BaseImageError, BaseImageRegistrar, BaseImageSpec, rootfs
from racetrack_core.baseimages.aptsources import find_mirror
from racetrack_core.baseimages.bootstrap import KEY_LABEL, cache_key, options_from_settings
from racetrack_core.baseimages.engine import DockerEngine
from racetrack_core.settings import Settings
from racetrack_core.testing.plugin import RegisterPlugin
from racetrack_plugins.python3.base_images import BASE_IMAGE, PACKAGES
from tests.cli.conftest import RunCli
from tests.samples.hello import import_hello

pytestmark = pytest.mark.slow

SUITE = "bookworm"
NOBODY = 65534


class Tools:
    """What the tests need from the machine, found once."""

    def __init__(self) -> None:
        # As the command sees them in these tests: the environment, and no config.yaml (the
        # command-line tests point HOME at a folder of their own).
        options = options_from_settings(Settings.load({"home": "/nonexistent/racetrack-home"}))
        self.cache = options.cache
        self.docker = shutil.which(options.docker_cli) or options.docker_cli
        self.mirror = options.mirror or find_mirror(SUITE).uri


@pytest.fixture(scope="module")
def tools() -> Tools:
    if os.geteuid() != 0:
        pytest.skip("building base images needs root")
    if shutil.which("debootstrap") is None:
        pytest.skip("debootstrap is missing (apt-get install -y debootstrap)")
    found = Tools()
    try:
        DockerEngine(found.docker).check()
    except BaseImageError as exc:
        pytest.skip(str(exc))
    return found


@pytest.fixture
def image_name(tools: Tools) -> Iterator[str]:
    """A base-image name of this test's own, removed from the engine afterwards."""
    name = f"racetrack-test/baseimages-{uuid.uuid4().hex[:10]}:{SUITE}"
    yield name
    subprocess.run([tools.docker, "image", "rm", name], capture_output=True, check=False)


class Kiln:
    """A plugin declaring one image made of the python3 job type's packages."""

    def __init__(self, name: str) -> None:
        self.name = name

    @hookimpl
    def register_base_images(self, registry: BaseImageRegistrar) -> None:
        registry.register(self.name, PACKAGES, suite=SUITE)


def deb822_sources(folder: Path, mirror: str) -> Path:
    (folder / "sources.list.d").mkdir(parents=True)
    (folder / "sources.list.d/test.sources").write_text(
        f"Types: deb\nURIs: {mirror}\nSuites: {SUITE} {SUITE}-updates\nComponents: main\n",
        encoding="utf-8",
    )
    return folder


def one_line_sources(folder: Path, mirror: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "sources.list").write_text(
        f"# deb http://commented.invalid/debian {SUITE} main\n"
        f"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {mirror} {SUITE} main\n",
        encoding="utf-8",
    )
    return folder


def listed(run_cli: RunCli, *args: str) -> list[dict[str, object]]:
    result = run_cli("images", "bootstrap", "--list", "--json", *args)
    assert result.exit_code == 0, result.output
    answer: list[dict[str, object]] = json.loads(result.stdout)
    return answer


def test_bootstrap_builds_an_image_that_runs_python_and_a_second_run_does_nothing(
    tools: Tools,
    run_cli: RunCli,
    racetrack_register_plugin: RegisterPlugin,
    image_name: str,
    tmp_path: Path,
) -> None:
    racetrack_register_plugin(Kiln(image_name), "kiln")
    apt = deb822_sources(tmp_path / "apt", tools.mirror)
    expected_key = cache_key(BaseImageSpec(image_name, PACKAGES, SUITE), tools.mirror, None)
    [before] = listed(run_cli, image_name, "--apt-dir", str(apt))
    assert (before["key"], before["plugin"]) == (expected_key, "kiln")
    assert before["state"] in {"missing", "cached"}

    first = run_cli("images", "bootstrap", image_name, "--apt-dir", str(apt))
    assert first.exit_code == 0, first.output
    if before["state"] == "missing":  # a cold cache: a real debootstrap from the test's mirror
        assert f"(mirror from {apt}/sources.list.d/test.sources;" in first.stderr
        assert f"{image_name}: debootstrap done in" in first.stderr
        assert f"{image_name}: removed apt lists, documentation and manual pages" in first.stderr
    else:
        assert f"{image_name}: root found in the cache (key {expected_key})" in first.stderr
    assert f"{image_name}: imported as sha256:" in first.stderr
    assert (tools.cache / "roots" / expected_key / "etc/os-release").is_file()

    ran = subprocess.run(
        [tools.docker, "run", "--rm", "--network", "host", image_name, "python3", "-c", "print(1)"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (ran.returncode, ran.stdout) == (0, "1\n"), ran.stderr
    # What the python3 Dockerfile template does first with its base image: a virtual environment
    # with pip (ensurepip's wheel is checked rather than installed, which takes 20 s), and the
    # job's user.
    template_steps = (
        "python3 -m venv --without-pip /opt/job-venv"
        " && /opt/job-venv/bin/python -c 'import ensurepip; print(\"pip\", ensurepip.version())'"
        " && useradd --system --uid 10001 --create-home --home-dir /home/job job"
    )
    steps = subprocess.run(
        [tools.docker, "run", "--rm", "--network", "host", image_name, "sh", "-c", template_steps],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert steps.returncode == 0, steps.stderr
    assert steps.stdout.startswith("pip ")
    labels = DockerEngine(tools.docker).labels(image_name)
    assert labels is not None
    assert labels[KEY_LABEL] == expected_key
    assert labels["racetrack.base-image.packages"] == ",".join(PACKAGES)

    started = time.monotonic()
    second = run_cli("images", "bootstrap", image_name, "--apt-dir", str(apt))
    assert second.exit_code == 0, second.output
    assert time.monotonic() - started < 10
    assert f"{image_name}: present (key {expected_key}), nothing to do" in second.stderr
    assert "importing" not in second.stderr
    [after] = listed(run_cli, image_name, "--apt-dir", str(apt))
    assert after["state"] == "present"


def test_the_mirror_comes_from_one_line_sources_too_and_is_part_of_the_key(
    tools: Tools, run_cli: RunCli, tmp_path: Path
) -> None:
    spec = BaseImageSpec(BASE_IMAGE, PACKAGES, SUITE)
    deb822 = deb822_sources(tmp_path / "deb822", tools.mirror)
    one_line = one_line_sources(tmp_path / "one-line", tools.mirror)
    elsewhere = one_line_sources(tmp_path / "elsewhere", "http://mirror.invalid/debian")

    keys = [listed(run_cli, BASE_IMAGE, "--apt-dir", str(d))[0]["key"] for d in (deb822, one_line)]
    assert keys == [cache_key(spec, tools.mirror, None)] * 2
    [other] = listed(run_cli, BASE_IMAGE, "--apt-dir", str(elsewhere))
    assert other["key"] == cache_key(spec, "http://mirror.invalid/debian", None) != keys[0]
    # The option wins over the apt sources.
    [given] = listed(run_cli, BASE_IMAGE, "--apt-dir", str(elsewhere), "--mirror", tools.mirror)
    assert given["key"] == keys[0]


def test_list_shows_the_python3_job_types_image(tools: Tools, run_cli: RunCli) -> None:
    result = run_cli("images", "bootstrap", "--list")
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["IMAGE", "SUITE", "PACKAGES", "PLUGIN", "STATE"]
    python3 = next(row for row in rows if row.startswith(BASE_IMAGE))
    assert "python3, python3-venv, ca-certificates, passwd  python3" in python3
    assert python3.split()[-1] in {"present", "cached", "missing", "outdated"}


def test_a_third_party_image_recipe_declares_its_base_image_and_bootstrap_builds_it(
    tools: Tools, run_cli: RunCli, racetrack_register_plugin: RegisterPlugin
) -> None:
    """The sample plugin's image recipe names its base image and its Debian packages
    (``debian_base``); the command builds it, and the image runs the sample's runtime."""
    hello = import_hello()
    racetrack_register_plugin(hello, "hello")
    name = hello.recipes.BASE_IMAGE.image
    # Take it out of the engine (unless a container uses it), so that the run imports it again.
    subprocess.run([tools.docker, "image", "rm", name], capture_output=True, check=False)
    [before] = listed(run_cli, name)
    assert (before["plugin"], before["packages"], before["suite"]) == ("hello", ["python3"], SUITE)

    built = run_cli("images", "bootstrap", name)
    assert built.exit_code == 0, built.output
    if before["state"] != "present":
        assert f"{name}: imported as sha256:" in built.stderr
    [after] = listed(run_cli, name)
    assert after["state"] == "present"
    server = hello.recipes.SERVER.read_text(encoding="utf-8")
    ran = subprocess.run(
        [tools.docker, "run", "--rm", "--network", "none", "-i", "--user", str(NOBODY), name,
         "python3", "-c", "import sys; compile(sys.stdin.read(), 'server.py', 'exec'); print(1)"],
        input=server, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert (ran.returncode, ran.stdout) == (0, "1\n"), ran.stderr


def test_a_ca_bundle_joins_the_trust_store_of_the_root(
    tools: Tools,
    run_cli: RunCli,
    racetrack_register_plugin: RegisterPlugin,
    image_name: str,
    tmp_path: Path,
) -> None:
    racetrack_register_plugin(Kiln(image_name), "kiln")
    bundle = tmp_path / "site-ca.pem"
    bundle.write_bytes(self_signed_certificate())
    plain, with_ca = (
        listed(run_cli, image_name, *extra)[0]["key"]
        for extra in ((), ("--ca-bundle", str(bundle)))
    )
    assert plain != with_ca

    # The cached root of the python3 packages is the lower layer of an overlay, so that adding
    # the CA changes a layer of the test's own and costs no debootstrap and no copy.
    cached = tools.cache / "roots" / str(plain)
    if not (cached / "etc/os-release").exists():
        built = run_cli("images", "bootstrap", image_name)
        assert built.exit_code == 0, built.output
    layers = {name: tmp_path / name for name in ("upper", "work", "root")}
    for folder in layers.values():
        folder.mkdir()
    options = f"lowerdir={cached},upperdir={layers['upper']},workdir={layers['work']}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, layers["root"]], check=True)
    try:
        rootfs.add_ca_bundle(layers["root"], rootfs.read_ca_bundle(bundle))
        trusted = (layers["root"] / "etc/ssl/certs/ca-certificates.crt").read_bytes()
        body = bundle.read_bytes().split(b"\n")[1]
        assert body in trusted
        assert (layers["root"] / "etc/ssl/certs/racetrack-site-ca.pem").is_symlink()
    finally:
        subprocess.run(["umount", layers["root"]], check=True)
    assert body not in (cached / "etc/ssl/certs/ca-certificates.crt").read_bytes()


def self_signed_certificate() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Racetrack test site CA")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


# ---------------------------------------------------------------- errors


def test_not_root_is_told_to_run_it_as_root(
    tools: Tools, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The command runs in a forked child that gave up root (user and group nobody): it has
    # everything imported already, so no folder of the clone needs to be readable by nobody.
    monkeypatch.setenv("RACETRACK_HOME", "/nonexistent/racetrack-home")
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child reports through the pipe)
        status = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            result = run_cli("images", "bootstrap")
            os.write(write_end, json.dumps([result.exit_code, result.stderr]).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, encoding="utf-8") as answer:
        reported = answer.read()
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    exit_code, stderr = json.loads(reported)
    assert exit_code == 1
    assert stderr.strip() == (
        "Error: building base images needs root (debootstrap installs packages and chroots, and "
        "the roots hold files only root may read): run it as root, for example with sudo"
    )


def test_no_engine_is_told_to_start_dockerd(
    tools: Tools, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    result = run_cli("images", "bootstrap")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: the Docker engine does not answer (")
    assert "start dockerd, or point DOCKER_HOST at a running engine" in result.stderr
    missing = run_cli("images", "bootstrap", "--docker", str(tmp_path / "docker"))
    assert missing.exit_code == 1
    assert "is not installed: install it (apt-get install docker.io)" in missing.stderr


def test_no_debootstrap_is_told_what_to_install_and_nothing_is_written(
    tools: Tools,
    run_cli: RunCli,
    racetrack_register_plugin: RegisterPlugin,
    image_name: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    racetrack_register_plugin(Kiln(image_name), "kiln")
    tools_only = tmp_path / "bin"
    tools_only.mkdir()
    for tool in (tools.docker, shutil.which("tar")):
        assert tool is not None
        (tools_only / Path(tool).name).symlink_to(tool)
    monkeypatch.setenv("PATH", str(tools_only))
    cache = tmp_path / "cache"
    result = run_cli("images", "bootstrap", image_name, "--cache", str(cache))
    assert result.exit_code == 1
    assert result.stderr == "Error: 'debootstrap' is not installed: apt-get install debootstrap\n"
    assert not cache.exists()
    # --force rebuilds whatever the state, so it needs debootstrap even where the shared cache
    # holds the root (and it fails before it removes anything).
    forced = run_cli("images", "bootstrap", BASE_IMAGE, "--force")
    assert forced.exit_code == 1
    assert forced.stderr == result.stderr


def test_unknown_names_bad_ca_bundles_and_unknown_suites_are_refused(
    tools: Tools, run_cli: RunCli, tmp_path: Path
) -> None:
    unknown = run_cli("images", "bootstrap", "racetrack/nothing:1")
    assert unknown.exit_code == 1
    assert "no plugin declares base image 'racetrack/nothing:1'. Declared: " in unknown.stderr
    assert BASE_IMAGE in unknown.stderr
    bad_bundle = run_cli("images", "bootstrap", "--list", "--ca-bundle", str(tmp_path / "no.pem"))
    assert bad_bundle.exit_code == 1
    assert (
        "no.pem: No such file or directory; give a PEM file with --ca-bundle" in bad_bundle.stderr
    )
    apt = tmp_path / "apt"
    apt.mkdir()
    (apt / "sources.list").write_text(f"deb {tools.mirror} trixie main\n", encoding="utf-8")
    no_mirror = run_cli("images", "bootstrap", "--list", "--apt-dir", str(apt))
    assert no_mirror.exit_code == 1
    assert f"serves Debian '{SUITE}' over http, https or file (suites found: trixie)" in (
        no_mirror.stderr
    )
    usage = run_cli("images", "bootstrap", "--json")
    assert (usage.exit_code, "--json goes with --list" in usage.stderr) == (2, True)
