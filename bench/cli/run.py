"""Start-up time of the ``racetrack`` command against the ``racetrack-client`` package from PyPI.

Usage: ``.venv/bin/python bench/cli/run.py [--runs 20] [--warmup 3]``

Installs ``racetrack-client`` (the original client, whose command is also ``racetrack``) with uv
into a virtual environment of its own, on this same Python; starts a real ``racetrack up`` in a
fresh temporary home on free 127.0.0.1 ports; deploys ``sample/python-primer`` through the API,
so that ``list`` has one job to show; points both clients at that server and logs both in with
one token (``set remote``, ``login TOKEN``: the same ``config.yaml`` format, in a folder of each
one's own). Then one ``hyperfine`` run times the four commands side by side: ``racetrack
--help`` and ``racetrack list`` of each client, with warm-up runs first, no shell in between
(``-N``), and the results exported as JSON. Prints a markdown report on stdout; progress and
hyperfine's own output on stderr. The server is stopped by its pid; the temporary folder is
removed. Needs ``hyperfine`` (``apt-get install -y hyperfine``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from uv import find_uv_bin

from racetrack_core.manifest import load_manifest
from racetrack_core.source import pack_build_context

ROOT = Path(__file__).resolve().parents[2]
PRIMER_DIR = ROOT / "sample" / "python-primer"
#: The newest release of the original client.
CLIENT_REQUIREMENT = "racetrack-client==2.35.1"
#: Issue 5: ours starts at least twice as fast.
SPEED_GOAL = 2.0
COMMANDS = ("--help", "list")


def say(text: str) -> None:
    print(f"  {text}", file=sys.stderr)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def install_client(venv: Path) -> Path:
    """``racetrack-client`` in a new virtual environment; its ``racetrack`` command."""
    uv = find_uv_bin()
    for step in (
        [uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
        [uv, "pip", "install", "--quiet", "--python", f"{venv}/bin/python", CLIENT_REQUIREMENT],
    ):
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(
                f"could not install {CLIENT_REQUIREMENT} (is the package index reachable?): "
                f"`{' '.join(step)}` exited with {done.returncode}:\n{done.stderr}{done.stdout}"
            )
    return venv / "bin" / "racetrack"


@contextmanager
def running_server(base: Path) -> Iterator[tuple[str, str]]:
    """``racetrack up`` with primer deployed: the remote to type, and an admin token."""
    password = secrets.token_urlsafe(16)
    ports = {name: free_port() for name in ("lifecycle", "pub", "dashboard")}
    remote = f"http://127.0.0.1:{ports['lifecycle']}"
    api = f"{remote}/lifecycle/api/v1"
    log = base / "up.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "racetrack_cli", "up", "--home", str(base / "home")),
                *(f"--{name}-port={port}" for name, port in ports.items()),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RACETRACK_ADMIN_PASSWORD": password},
            cwd=ROOT,
        )
    try:
        with httpx.Client(timeout=30) as client:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"racetrack up did not start:\n{log.read_text(errors='replace')}")
                try:
                    if client.get(f"{api}/info", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
            answer = client.post(
                f"{api}/users/login", json={"username": "admin", "password": password}
            )
            answer.raise_for_status()
            token: str = answer.json()["token"]
            client.headers["X-Racetrack-Auth"] = token
            body = {
                "manifest": load_manifest(PRIMER_DIR / "job.yaml").data,
                "build_context": pack_build_context(PRIMER_DIR),
            }
            answer = client.post(f"{api}/deploy", json=body)
            answer.raise_for_status()
            while True:
                record = client.get(f"{api}/deploy/{answer.json()['id']}").json()
                if record["status"] == "done":
                    break
                if record["status"] != "in_progress" or time.monotonic() > deadline + 180:
                    sys.exit(f"deploying primer failed: {record}")
                time.sleep(0.1)
        yield remote, token
    finally:
        os.kill(process.pid, signal.SIGINT)  # Ctrl-C: the server stops its job too
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


@dataclass(frozen=True)
class Timing:
    """One command's hyperfine result, in milliseconds."""

    mean: float
    stddev: float
    median: float
    cpu: float  # user + system, mean per run

    @classmethod
    def of(cls, result: dict[str, float]) -> Timing:
        return cls(
            mean=result["mean"] * 1000,
            stddev=result["stddev"] * 1000,
            median=result["median"] * 1000,
            cpu=(result["user"] + result["system"]) * 1000,
        )


def measure(options: argparse.Namespace) -> str:
    with tempfile.TemporaryDirectory(prefix="racetrack-bench-cli-") as folder:
        base = Path(folder)
        ours = Path(sys.executable).parent / "racetrack"
        if not ours.exists():
            sys.exit(f"{ours} is missing: run this with the project's .venv/bin/python")
        say(f"installing {CLIENT_REQUIREMENT} with uv")
        theirs = install_client(base / "racetrack-client")
        # Each client reads its own folder: ours RACETRACK_CONFIG_DIR, theirs ~/.racetrack.
        env = {
            **os.environ,
            "RACETRACK_CONFIG_DIR": str(base / "ours"),
            "HOME": str(base / "theirs"),
        }
        say("starting racetrack up and deploying sample/python-primer")
        with running_server(base) as (remote, token):
            for client in (ours, theirs):
                for args in (["set", "remote", remote], ["login", token], ["list"]):
                    done = subprocess.run(
                        [str(client), *args], env=env, capture_output=True, text=True, check=False
                    )
                    if done.returncode != 0:
                        sys.exit(f"`{client} {' '.join(args)}` failed:\n{done.stdout}{done.stderr}")
                if "primer" not in done.stdout:
                    sys.exit(f"`{client} list` does not show primer:\n{done.stdout}")
            export = base / "hyperfine.json"
            command = [
                *("hyperfine", "-N", "--style", "basic"),
                *("--warmup", str(options.warmup), "--runs", str(options.runs)),
                *("--export-json", str(export)),
            ]
            for name in COMMANDS:
                for label, client in (("ours", ours), ("racetrack-client", theirs)):
                    command += ["-n", f"{label} {name}", f"{client} {name}"]
            say(f"hyperfine: {options.warmup} warm-up runs and {options.runs} runs per command")
            load_before = load_average()
            subprocess.run(command, env=env, stdout=sys.stderr, check=True)
            load_after = load_average()
            results = json.loads(export.read_text())["results"]
    timings = {result["command"]: Timing.of(result) for result in results}
    return report(timings, options, load_before, load_after)


def met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def report(
    timings: dict[str, Timing], options: argparse.Namespace, load_before: str, load_after: str
) -> str:
    lines = [
        "### CLI start-up (`racetrack` vs `racetrack-client` 2.35.1 from PyPI)",
        "",
        "| goal | measured | met |",
        "|---|---:|---|",
    ]
    rows = []
    for name in COMMANDS:
        ours, theirs = timings[f"ours {name}"], timings[f"racetrack-client {name}"]
        ratio = theirs.mean / ours.mean
        lines.append(
            f"| `racetrack {name}`: ours ≥ {SPEED_GOAL:.0f} times as fast as racetrack-client "
            f"(mean) | {ratio:.2f} ({ours.mean:.0f} / {theirs.mean:.0f} ms) "
            f"| {met(ratio >= SPEED_GOAL)} |"
        )
        for label, timing in (("ours", ours), ("racetrack-client", theirs)):
            rows.append(
                f"| `racetrack {name}` | {label} | {timing.mean:.0f} ± {timing.stddev:.0f} "
                f"| {timing.median:.0f} | {timing.cpu:.0f} "
                f"| {timing.mean / ours.mean:.2f} | {timing.cpu / ours.cpu:.2f} |"
            )
    lines += [
        "",
        f"hyperfine, no shell (`-N`), {options.warmup} warm-up runs then {options.runs} runs "
        "per command, the four commands one after another in one run; both clients on the same "
        f"Python {sys.version.split()[0]}, logged in to the same `racetrack up` (one job "
        f"deployed), output not a terminal. Load average before: {load_before}; "
        f"after: {load_after}.",
        "",
        "| command | client | mean ± stddev ms | median ms | CPU ms (user + sys) "
        "| time vs ours | CPU vs ours |",
        "|---|---|---:|---:|---:|---:|---:|",
        *rows,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs per command")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per command first")
    options = parser.parse_args()
    if not shutil.which("hyperfine"):
        sys.exit("hyperfine is missing: apt-get install -y hyperfine")
    print(measure(options))


if __name__ == "__main__":
    main()
