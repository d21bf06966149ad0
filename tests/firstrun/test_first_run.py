"""The README's two commands, as written, on a fresh Debian 12 that has only python3.

A clean debootstrap root (``python3``, ``git``, ``ca-certificates``, the host's CA bundle; no
pip, no ensurepip, no PostgreSQL, Chromium or Docker) gets a clean clone of this repository in
an ordinary user's home. As that user, in a chroot on the host's network: ``./dev up`` must
bootstrap uv inside the clone, deploy the sample and print ``true``; ``./dev test --tests-only
-m smoke`` must run the smoke tests (lint and typing need nothing but Python: they run in CI's
own ``./dev test``, on the same Python 3.11.2). The user cannot write outside their home, so a
system-wide install would fail here. The root is cached (see ``debian_root``), and so are uv's
and pip's caches, outside the clone.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.firstrun.debian_root import (
    CACHE,
    UID,
    USER,
    Session,
    cached_root,
    missing_requirement,
    session,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[2]
CLONE = Path("/home") / USER / "racetrack"
# What a user's shell may carry that says how to reach the network and the package index.
PASSED_THROUGH = (
    "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
    "PIP_INDEX_URL", "UV_INDEX_URL", "UV_DEFAULT_INDEX",
)  # fmt: skip


@dataclass
class Machine:
    """The chroot: run a shell command in the clone as the user, see what runs inside."""

    session: Session
    durations: dict[str, float] = field(default_factory=dict)

    @property
    def clone(self) -> Path:
        return self.session.path / CLONE.relative_to("/")

    def argv(self, command: str) -> list[str]:
        return [
            shutil.which("chroot") or "/usr/sbin/chroot", f"--userspec={UID}:{UID}",
            str(self.session.path), "/bin/bash", "-c", f"cd {CLONE} && {command}",
        ]  # fmt: skip

    def environment(self) -> dict[str, str]:
        env = {
            "HOME": f"/home/{USER}",
            "USER": USER,
            "LOGNAME": USER,
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
        }
        env.update({name: os.environ[name] for name in PASSED_THROUGH if name in os.environ})
        return env

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        done = subprocess.run(
            self.argv(command),
            env=self.environment(),
            capture_output=True,
            text=True,
            check=False,
            timeout=1500,
        )
        label = command if len(command) <= 60 else command[:57] + "..."
        self.durations[label] = time.monotonic() - started
        return done

    def processes(self) -> list[int]:
        """Processes whose root is this chroot."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.readlink(entry / "root") == str(self.session.path):
                        found.append(int(entry.name))
                except OSError:
                    continue
        return found


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    why = missing_requirement()
    if why is not None:
        pytest.skip(f"the first-run test {why}")
    root = cached_root()
    with session(root, CACHE / "home-cache") as current:
        machine = Machine(current)
        clone(machine.clone)
        try:
            yield machine
        finally:
            leftover = machine.processes()
            for pid in leftover:
                os.kill(pid, signal.SIGKILL)
            for name, seconds in machine.durations.items():
                print(f"first run: {name}: {seconds:.0f} s")
            assert not leftover, f"processes left running in the root: {leftover}"


def clone(target: Path) -> None:
    """A clean clone of this repository, with the working tree's uncommitted changes."""
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(target)], check=True
    )
    diff = subprocess.run(
        ["git", "-C", str(REPO), "diff", "HEAD", "--binary"], capture_output=True, check=True
    ).stdout
    if diff:
        subprocess.run(
            ["git", "-C", str(target), "apply", "--whitespace=nowarn"], input=diff, check=True
        )
    subprocess.run(["chown", "-R", f"{UID}:{UID}", str(target)], check=True)


def test_the_root_is_bare(machine: Machine) -> None:
    done = machine.run("python3 --version && ! python3 -m pip --version && ! command -v uv")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.match(r"Python 3\.11\.", done.stdout), done.stdout


def test_dev_up_deploys_the_sample_and_prints_true(machine: Machine) -> None:
    started = time.monotonic()
    server = subprocess.Popen(
        machine.argv("./dev up"),
        env=machine.environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert server.stdout is not None
    output: list[str] = []
    answered = threading.Event()

    def read(stream: Iterator[str]) -> None:
        for line in stream:
            output.append(line)
            if line.strip() == "true":
                answered.set()

    reader = threading.Thread(target=read, args=(server.stdout,), daemon=True)
    reader.start()
    try:
        while not answered.is_set() and server.poll() is None:
            answered.wait(1)
            assert time.monotonic() - started < 1200, "./dev up printed no 'true' in 20 min"
        machine.durations["./dev up (until true)"] = time.monotonic() - started
        assert answered.is_set(), "./dev up ended without printing true:\n" + "".join(output)
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)  # what Ctrl-C does: ./dev stops the server
        try:
            server.wait(timeout=60)
        finally:
            reader.join(timeout=5)
            server.stdout.close()
    text = "".join(output)
    assert "installing uv" in text, text  # bootstrapped without pip, into the clone
    assert (machine.clone / ".dev-tools" / "uv" / "bin" / "uv").is_file()
    assert re.search(r"^deployed in [0-9.]+ s", text, re.MULTILINE), text
    deadline = time.monotonic() + 30
    while machine.processes() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert machine.processes() == [], "./dev up left processes after SIGTERM:\n" + text


def test_dev_test_runs_the_smoke_selection(machine: Machine) -> None:
    done = machine.run("./dev test --tests-only -m smoke")
    text = done.stdout + done.stderr
    for line in re.findall(r"^nox > Session \S+ was successful in .*$", text, re.MULTILINE):
        print(f"first run: {line}")
    assert done.returncode == 0, text
    summary = re.search(r"^tests: (\d+) passed, 0 failed, 0 skipped$", done.stdout, re.MULTILINE)
    assert summary, text
    assert int(summary.group(1)) >= 10, text


def test_without_pip_or_apt_dev_says_what_to_install(machine: Machine) -> None:
    # A second copy of the clone, run where apt-get is not on PATH: no way left to get pip.
    tools = "bash sh python3 sed awk sort head tail ls rm mkdir mktemp cat dirname"
    done = machine.run(
        "rm -rf ~/bare ~/no-apt && mkdir ~/bare ~/no-apt"
        f" && for tool in {tools}; do ln -s $(command -v $tool) ~/no-apt/$tool; done"
        " && git ls-files -z | xargs -0 cp --parents -t ~/bare"
        " && cd ~/bare && PATH=~/no-apt ./dev up"
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.splitlines()[-1] == (
        "dev: cannot install uv: this Python has no pip and no pip wheel was found. Install uv "
        "(https://docs.astral.sh/uv/), or pip (Debian, Ubuntu: apt-get install python3-pip), "
        "then run ./dev again"
    ), done.stderr
    assert not (machine.session.path / "home" / USER / "bare" / ".venv").exists()
