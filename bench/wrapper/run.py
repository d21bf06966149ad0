"""Measure the python3 job wrapper against a bare Starlette app: wrk, same JSON, same uvicorn.

Usage: ``.venv/bin/python bench/wrapper/run.py [--duration 5] [--repeats 2] [--profile]``

Starts each server as its own process on a free 127.0.0.1 port: the bare app (``bare.py``) and
the wrapper (``python -m racetrack_plugins.python3.wrapper``) serving ``job/entrypoint.py`` with
a plain ``def perform`` and with an ``async def perform``. Both call ``uvicorn.run`` with the
same arguments (uvloop and httptools when installed, log level ``info`` as a deployed job
runs, so one access-log line per call, written to a file); a second pair runs with
``--log-level warning`` to show what the access log costs. Runs ``wrk -c32 -t2`` (a POST with
a JSON body, ``post.lua``) against each, ``--repeats`` times in turn so that a burst of other
load hits every target alike, then ``wrk -c1 -t1 --latency`` for p50. Prints a markdown report
on stdout; progress on stderr. ``--profile`` runs the wrapper under cProfile for one c32 run
and prints where its time goes. Every process is stopped by its pid. Needs ``wrk``.
"""

from __future__ import annotations

import argparse
import os
import pstats
import re
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
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PYTHON = sys.executable
PATH = "/api/v1/perform"
BODY = b'{"name": "bench"}'
RATIO_GOAL = 0.9


@dataclass(frozen=True)
class Target:
    name: str
    #: The server's command line; ``{port}`` is replaced by a free port.
    args: tuple[str, ...]
    log_level: str = "info"
    #: Compared in the c1 latency runs too (the others only at c32).
    main: bool = True


def wrapper(entrypoint_class: str) -> tuple[str, ...]:
    return (
        *("-m", "racetrack_plugins.python3.wrapper", "--entrypoint-path", "entrypoint.py"),
        *("--entrypoint-class", entrypoint_class, "--job-dir", str(HERE / "job")),
        *("--port", "{port}"),
    )


BARE = (str(HERE / "bare.py"), "--port", "{port}")
TARGETS = (
    Target("bare Starlette", BARE),
    Target("wrapper, def perform", wrapper("SyncJob")),
    Target("wrapper, async def perform", wrapper("AsyncJob")),
    Target("bare Starlette, no access log", BARE, "warning", main=False),
    Target("wrapper, def perform, no access log", wrapper("SyncJob"), "warning", main=False),
    Target("wrapper, async def perform, no access log", wrapper("AsyncJob"), "warning", False),
)


@dataclass
class Measured:
    target: Target
    rps: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)
    p50_ms: float | None = None

    @property
    def median_rps(self) -> float:
        return statistics.median(self.rps)

    @property
    def median_cpu_us(self) -> float:
        return statistics.median(self.cpu_us)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def serving(
    args: list[str], log: Path, stop_signal: int = signal.SIGTERM
) -> Iterator[tuple[int, str]]:
    """Start a server (its output to ``log``), wait for an answer, stop it by its pid."""
    port = free_port()
    command = [arg.replace("{port}", str(port)) for arg in args]
    url = f"http://127.0.0.1:{port}{PATH}"
    with log.open("ab") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        wait_for_answer(url, process)
        yield process.pid, url
    finally:
        stop(process, stop_signal)


def stop(process: subprocess.Popen[bytes], stop_signal: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.kill(process.pid, stop_signal)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def wait_for_answer(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(  # noqa: S310 (http://127.0.0.1 built above)
        url, data=BODY, headers={"Content-Type": "application/json"}
    )
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout} s")


def wrk(url: str, connections: int, threads: int, duration: int) -> tuple[float, float, int]:
    """Requests per second, p50 in ms, and the number of requests of one wrk run."""
    args = ["wrk", f"-c{connections}", f"-t{threads}", f"-d{duration}s", "--latency"]
    args += ["-s", str(HERE / "post.lua"), url]
    text = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in text or "Socket errors" in text:
        raise RuntimeError(f"wrk saw errors against {url}:\n{text}")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    count = re.search(r"(\d+) requests in", text)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if not rps or not count or not p50:
        raise RuntimeError(f"unexpected wrk output:\n{text}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50.group(2)]
    return float(rps.group(1)), float(p50.group(1)) * scale, int(count.group(1))


def command(target: Target) -> list[str]:
    return [PYTHON, *target.args, "--log-level", target.log_level]


def measure(duration: int, repeats: int, logs: Path) -> list[Measured]:
    results = [Measured(target) for target in TARGETS]
    for round_number in range(1, repeats + 1):
        for result in results:
            if not result.target.main and round_number > 1:
                continue
            with serving(command(result.target), logs / "servers.log") as (pid, url):
                wrk(url, 32, 2, 1)  # warm-up
                before = cpu_seconds(pid)
                rps, _, count = wrk(url, 32, 2, duration)
                result.rps.append(rps)
                result.cpu_us.append((cpu_seconds(pid) - before) / count * 1e6)
                if round_number == 1 and result.target.main:
                    result.p50_ms = wrk(url, 1, 1, duration)[1]
            print(
                f"  {result.target.name}: {rps:.0f} req/s c32 (round {round_number})",
                file=sys.stderr,
            )
    return results


def profile(duration: int, logs: Path) -> str:
    """Run the wrapper (def perform) under cProfile through one c32 run; the top functions."""
    output = logs / "wrapper.prof"
    target = TARGETS[1]
    args = [PYTHON, "-m", "cProfile", "-o", str(output), *target.args]
    args += ["--log-level", target.log_level]
    # SIGINT: uvicorn re-raises it after its shutdown, as KeyboardInterrupt, and cProfile
    # still writes its file; SIGTERM would end the process first.
    with serving(args, logs / "profile.log", signal.SIGINT) as (_, url):
        wrk(url, 32, 2, duration)
    text = Path(logs / "profile.txt")
    with text.open("w") as stream:
        stats = pstats.Stats(str(output), stream=stream)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(40)
    return text.read_text()


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def report(results: list[Measured], duration: int, repeats: int, load: str) -> str:
    by_name = {result.target.name: result for result in results}
    bare = by_name["bare Starlette"]
    sync = by_name["wrapper, def perform"]
    ratio = sync.median_rps / bare.median_rps
    cpu_ratio = bare.median_cpu_us / sync.median_cpu_us
    met = "met" if ratio >= RATIO_GOAL else "**not met**"
    assert bare.p50_ms is not None
    assert sync.p50_ms is not None
    lines = [
        "### Wrapper throughput",
        "",
        "| goal | measured | met |",
        "|---|---:|---|",
        f"| wrapper (def perform) / bare req/s at c32 ≥ {RATIO_GOAL} | {ratio:.2f} "
        f"({sync.median_rps:.0f} / {bare.median_rps:.0f} req/s) | {met} |",
        f"| same ratio from CPU time per request (load-independent) | {cpu_ratio:.2f} | |",
        f"| p50 at c1: wrapper vs bare | {sync.p50_ms:.3f} ms vs {bare.p50_ms:.3f} ms "
        f"(+{sync.p50_ms - bare.p50_ms:.3f}) | |",
        "",
        f"wrk `-c32 -t2 -d{duration}s` POST with a JSON body, median of {repeats} runs "
        "taken in turn (others once); `-c1 -t1` for p50. "
        f"Load average before the runs: {load}; after: {load_average()}.",
        "",
        "| server | c32 req/s (median) | runs | server CPU µs/req | c1 p50 ms | vs bare |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for result in results:
        base = bare if result.target.main else by_name["bare Starlette, no access log"]
        runs = ", ".join(f"{rps:.0f}" for rps in result.rps)
        p50 = "" if result.p50_ms is None else f"{result.p50_ms:.3f}"
        lines.append(
            f"| {result.target.name} | {result.median_rps:.0f} | {runs} "
            f"| {result.median_cpu_us:.0f} | {p50} | {result.median_rps / base.median_rps:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=2, help="c32 runs per main target")
    parser.add_argument("--profile", action="store_true", help="profile the wrapper too")
    options = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install -y wrk)")
    load = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-wrapper-") as tmp:
        results = measure(options.duration, options.repeats, Path(tmp))
        print(report(results, options.duration, options.repeats, load))
        if options.profile:
            print(profile(options.duration, Path(tmp)), file=sys.stderr)


if __name__ == "__main__":
    main()
