"""Measure the python3 job wrapper against a bare Starlette app: wrk, same JSON, same uvicorn.

Usage: ``.venv/bin/python bench/wrapper/run.py [--duration 5] [--repeats 2] [--profile]
[--wrapper-module racetrack_plugins.python3.wrapper]``

Each wrapper variant is compared with its like in a bare Starlette app (``bare.py``): the
wrapper serving ``job/entrypoint.py`` with a ``def perform`` against a bare endpoint whose work
runs in Starlette's threadpool (as a ``def`` endpoint's does), and with an ``async def perform``
against an ``async def`` endpoint. Every server is its own process on a free 127.0.0.1 port, and
all call ``uvicorn.run`` with the same arguments: uvloop and httptools when installed, log level
``info``, and the access log off as a deployed job runs it; the same four targets run again with
``--access-log`` on both sides, to show what one log line per call costs.

Runs ``wrk -c32 -t2`` (a POST with a JSON body, ``post.lua``) against each main target
``--repeats`` times in turn, so that a burst of other load hits every target alike, then
``wrk -c1 -t1 --latency`` for p50. Prints a markdown report on stdout; progress on stderr.
``--profile`` runs the wrapper (``def perform``) under cProfile for one c32 run and prints where
its time goes. ``--wrapper-module`` serves another copy of the wrapper (on ``PYTHONPATH``), to
measure an older version with the same harness. Every process is stopped by its pid. Needs
``wrk``.
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
    #: The server's command line; ``{port}`` is replaced by a free port, ``{wrapper}`` by the
    #: wrapper's module.
    args: tuple[str, ...]
    #: The name of the bare target that this one is compared with (``None``: it is a baseline).
    baseline: str | None = None
    access_log: bool = False
    #: Run ``--repeats`` times and in the c1 latency runs (the others once, at c32 only).
    main: bool = True


def wrapper(entrypoint_class: str) -> tuple[str, ...]:
    return (
        *("-m", "{wrapper}", "--entrypoint-path", "entrypoint.py"),
        *("--entrypoint-class", entrypoint_class, "--job-dir", str(HERE / "job")),
        *("--port", "{port}"),
    )


BARE = (str(HERE / "bare.py"), "--port", "{port}")
BARE_ASYNC = "bare, async def endpoint"
BARE_SYNC = "bare, def endpoint (threadpool)"
WRAPPER_SYNC = "wrapper, def perform"
WRAPPER_ASYNC = "wrapper, async def perform"
#: The goal's pairs: each wrapper variant and its like in a bare app.
PAIRS = ((WRAPPER_SYNC, BARE_SYNC, "def"), (WRAPPER_ASYNC, BARE_ASYNC, "async def"))
ACCESS_LOG = ", access log"


def targets() -> tuple[Target, ...]:
    main = (
        Target(BARE_ASYNC, BARE),
        Target(BARE_SYNC, (*BARE, "--sync")),
        Target(WRAPPER_SYNC, wrapper("SyncJob"), BARE_SYNC),
        Target(WRAPPER_ASYNC, wrapper("AsyncJob"), BARE_ASYNC),
    )
    logged = tuple(
        Target(
            target.name + ACCESS_LOG,
            target.args,
            None if target.baseline is None else target.baseline + ACCESS_LOG,
            access_log=True,
            main=False,
        )
        for target in main
    )
    return main + logged


TARGETS = targets()


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
        try:
            wait_for_answer(url, process)
        except RuntimeError as error:
            tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-15:])
            raise RuntimeError(f"{error}; the end of its log:\n{tail}") from None
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


def command(target: Target, wrapper_module: str) -> list[str]:
    """The same logging settings on both sides: level ``info``, and the target's access log."""
    args = [arg.replace("{wrapper}", wrapper_module) for arg in target.args]
    return [PYTHON, *args, "--log-level", "info", *(["--access-log"] * target.access_log)]


def measure(duration: int, repeats: int, logs: Path, wrapper_module: str) -> list[Measured]:
    results = [Measured(target) for target in TARGETS]
    for round_number in range(1, repeats + 1):
        for result in results:
            if not result.target.main and round_number > 1:
                continue
            with serving(command(result.target, wrapper_module), logs / "servers.log") as (
                pid,
                url,
            ):
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


def profile(duration: int, logs: Path, wrapper_module: str) -> str:
    """Run the wrapper (def perform) under cProfile through one c32 run; the top functions."""
    output = logs / "wrapper.prof"
    [target] = [target for target in TARGETS if target.name == WRAPPER_SYNC]
    args = [PYTHON, "-m", "cProfile", "-o", str(output), *command(target, wrapper_module)[1:]]
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
    goals, cpu_ratios, latencies = [], [], []
    for wrapped_name, bare_name, kind in PAIRS:
        wrapped, bare = by_name[wrapped_name], by_name[bare_name]
        ratio = wrapped.median_rps / bare.median_rps
        met = "met" if ratio >= RATIO_GOAL else "**not met**"
        goals.append(
            f"| wrapper `{kind} perform` / bare `{kind}` endpoint, req/s at c32 ≥ {RATIO_GOAL} "
            f"| {ratio:.2f} ({wrapped.median_rps:.0f} / {bare.median_rps:.0f} req/s) | {met} |"
        )
        cpu_ratios.append(f"{kind}: {bare.median_cpu_us / wrapped.median_cpu_us:.2f}")
        assert wrapped.p50_ms is not None
        assert bare.p50_ms is not None
        latencies.append(
            f"{kind}: {wrapped.p50_ms:.3f} vs {bare.p50_ms:.3f} "
            f"({wrapped.p50_ms - bare.p50_ms:+.3f})"
        )
    lines = [
        "### Wrapper throughput",
        "",
        "| goal | measured | met |",
        "|---|---:|---|",
        *goals,
        f"| same ratios from CPU time per request (load-independent) | {'; '.join(cpu_ratios)} | |",
        f"| p50 ms at c1, wrapper vs bare | {'; '.join(latencies)} | |",
        "",
        f"wrk `-c32 -t2 -d{duration}s` POST with a JSON body, median of {repeats} runs "
        "taken in turn (the access-log rows once); `-c1 -t1` for p50. Both sides run at log level "
        "`info` with the access log off, as a deployed job does, or both with it on. "
        f"Load average before the runs: {load}; after: {load_average()}.",
        "",
        "| server | c32 req/s (median) | runs | server CPU µs/req | c1 p50 ms | vs its bare like |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for result in results:
        base = by_name[result.target.baseline or result.target.name]
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
    parser.add_argument(
        "--wrapper-module",
        default="racetrack_plugins.python3.wrapper",
        help="the wrapper to serve, as python -m runs it (default: this checkout's)",
    )
    options = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install -y wrk)")
    load = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-wrapper-") as tmp:
        results = measure(options.duration, options.repeats, Path(tmp), options.wrapper_module)
        print(report(results, options.duration, options.repeats, load))
        if options.profile:
            print(profile(options.duration, Path(tmp), options.wrapper_module), file=sys.stderr)


if __name__ == "__main__":
    main()
