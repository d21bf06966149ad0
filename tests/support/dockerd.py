"""A second Docker engine for tests, listening on loopback TCP only.

Racetrack reaches an engine through a setting (the docker target's ``base_url``, an image
builder's ``engine``, ``DOCKER_HOST``) when it runs where no engine is local, as Lifecycle in a
container or a pod does. ``second_engine`` is a real ``dockerd`` started for the test session
so that those settings are exercised against a real endpoint: ``tcp://127.0.0.1:<free port>``,
nothing else.

It must not disturb the engine already running here, nor the host:

- its own data root, kept between runs under ``/var/cache/racetrack-ci/dockerd/slot-N``
  (``RACETRACK_TEST_DOCKERD_CACHE`` moves it) so that the base images loaded into it and its
  build cache survive; a lock file per slot lets test sessions that run at the same time each
  take a slot of their own;
- its own exec root, pid file, containerd (started by dockerd under its exec root, with
  namespaces of its own) and cgroup parent;
- no firewall or forwarding changes (``--iptables=false --ip6tables=false --ip-masq=false
  --ip-forward=false``);
- the host's network left as it is: the default bridge, which reuses the ``docker0`` that the
  first engine made (its address and links untouched, never deleted), and only host-network
  containers. ``--bridge=none`` is never used: dockerd then deletes the host's ``docker0``.
  Where there is no ``docker0`` the second engine is not started (it would make one).

The fixture stops dockerd by its pid at the end, after removing every container on it (the
engine is this session's alone). ``load`` copies images from the first engine (``docker save |
docker load``), skipped when the second already holds the same image id.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

DOCKERD = Path("/usr/sbin/dockerd")
DOCKER_CLI = Path("/usr/bin/docker")
CACHE = Path(os.environ.get("RACETRACK_TEST_DOCKERD_CACHE", "/var/cache/racetrack-ci/dockerd"))
SLOTS = 4
#: The first engine's bridge, which the second one reuses and must find.
HOST_BRIDGE = Path("/sys/class/net/docker0")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SecondEngine:
    """A running dockerd on ``tcp://127.0.0.1:<port>``; stop it with ``stop``."""

    def __init__(self, slot: int, lock: IO[str], data_root: Path | None = None) -> None:
        self.slot = slot
        self._lock = lock
        self.data_root = data_root or CACHE / f"slot-{slot}" / "data"
        self.data_root.mkdir(parents=True, exist_ok=True)
        # Short: containerd's socket lives under it and Unix socket paths are short.
        self.exec_root = Path(tempfile.mkdtemp(prefix="rt-dockerd-", dir="/tmp"))
        self.port = _free_port()
        self.host = f"tcp://127.0.0.1:{self.port}"
        self.log_path = self.exec_root / "dockerd.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._stop_leftover()
        config = self.exec_root / "daemon.json"
        config.write_text("{}\n")  # not the host's /etc/docker/daemon.json
        command = [
            str(DOCKERD),
            f"--config-file={config}",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-masq=false",
            "--ip-forward=false",
            f"--data-root={self.data_root}",
            f"--exec-root={self.exec_root / 'exec'}",
            f"--pidfile={self.exec_root / 'dockerd.pid'}",
            f"--host={self.host}",
            f"--containerd-namespace=racetrack-ci-{self.slot}",
            f"--containerd-plugins-namespace=racetrack-ci-{self.slot}-plugins",
            f"--cgroup-parent=racetrack-ci-dockerd-{self.slot}",
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 60
        while self.cli("version", "--format", "{{.Server.Version}}", check=False) == "":
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the second dockerd did not start:\n{self.log()}")
            time.sleep(0.2)
        self.pid_file.write_text(f"{self.process.pid}\n")
        self.remove_containers()  # left by a session that died

    @property
    def pid_file(self) -> Path:
        """The pid of the dockerd running on this slot, kept while it runs."""
        return self.data_root.parent / "dockerd.pid"

    def _stop_leftover(self) -> None:
        """Stop this slot's dockerd that a killed session left running (its pid, if it is
        still a dockerd on this data root), so that two never share it."""
        try:
            pid = int(self.pid_file.read_text())
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return
        if (
            command[0] != str(DOCKERD).encode()
            or f"--data-root={self.data_root}".encode() not in command
        ):
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)

    def env(self) -> dict[str, str]:
        """The environment for a docker CLI or SDK that should reach this engine."""
        return {**os.environ, "DOCKER_HOST": self.host}

    def cli(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        done = subprocess.run(
            [str(DOCKER_CLI), *args],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"docker {' '.join(args[:2])} (second engine): {done.stderr}")
        return done.stdout.strip() if done.returncode == 0 else ""

    def client(self) -> Any:
        """A docker SDK client of this engine (close it)."""
        import docker

        return docker.DockerClient(base_url=self.host, timeout=60)

    def load(self, *images: str) -> None:
        """Copy ``images`` from the first engine, unless this one has the same image id."""
        for image in images:
            first = subprocess.run(
                [str(DOCKER_CLI), "image", "inspect", "--format", "{{.Id}}", image],
                capture_output=True,
                text=True,
                check=True,
                env={k: v for k, v in os.environ.items() if k != "DOCKER_HOST"},
            ).stdout.strip()
            if self.cli("image", "inspect", "--format", "{{.Id}}", image, check=False) == first:
                continue
            with subprocess.Popen([str(DOCKER_CLI), "save", image], stdout=subprocess.PIPE) as save:
                loaded = subprocess.run(
                    [str(DOCKER_CLI), "load", "--quiet"],
                    stdin=save.stdout,
                    capture_output=True,
                    env=self.env(),
                    timeout=600,
                    check=False,
                )
            assert save.wait(60) == 0, f"docker save {image} failed"
            assert loaded.returncode == 0, loaded.stderr.decode()

    def remove_containers(self) -> None:
        names = self.cli("ps", "--all", "--quiet", check=False).split()
        if names:
            self.cli("rm", "--force", *names, check=False)

    def remove_images(self, repository: str) -> None:
        """Remove the images tagged under ``repository/`` (the build cache stays)."""
        tags = self.cli("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).split()
        built = [tag for tag in tags if tag.startswith(f"{repository}/")]
        if built:
            self.cli("rmi", "--force", *built, check=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
                self.remove_containers()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        # dockerd leaves its network namespace mounted under the exec root.
        mounts = Path("/proc/self/mounts").read_text().splitlines()
        for point in sorted((line.split()[1] for line in mounts), reverse=True):
            if point.startswith(f"{self.exec_root}/"):
                subprocess.run(["umount", "--lazy", point], check=False)
        self.pid_file.unlink(missing_ok=True)
        shutil.rmtree(self.exec_root, ignore_errors=True)
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable() -> str | None:
    """Why a second engine cannot run here (None: it can)."""
    if os.geteuid() != 0:
        return "a second dockerd needs root"
    for needed in (DOCKERD, DOCKER_CLI):
        if not needed.is_file():
            return f"{needed} is not installed (Debian: docker.io)"
    if not HOST_BRIDGE.exists():
        return "the host has no docker0 (the running engine's bridge), which a second one reuses"
    return None


def start_second_engine(data_root: Path | None = None) -> SecondEngine:
    """Take a free slot (waiting up to a minute for one) and start its engine there, on the
    slot's cached data root or on ``data_root``."""
    CACHE.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + 60
    while True:
        for slot in range(SLOTS):
            (CACHE / f"slot-{slot}").mkdir(exist_ok=True)
            lock = (CACHE / f"slot-{slot}" / "lock").open("a")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                continue
            engine = SecondEngine(slot, lock, data_root)
            engine.start()
            return engine
        if time.monotonic() > deadline:
            raise RuntimeError(f"all {SLOTS} second-engine slots under {CACHE} are in use")
        time.sleep(1)


@pytest.fixture(scope="session")
def second_engine() -> Iterator[SecondEngine]:
    """A second dockerd on loopback TCP for this session (see the module's docstring)."""
    reason = unavailable()
    if reason is not None:
        if in_ci():
            pytest.fail(f"CI=true needs a second Docker engine: {reason}")
        pytest.skip(reason)
    engine = start_second_engine()
    try:
        yield engine
    finally:
        engine.stop()
