"""Measure Pub's hot path: wrk against the job directly, through nginx, and through each candidate.

Usage: ``.venv/bin/python bench/pub/run.py [--duration 5] [--only aiohttp,pub] [--workers 1]``

Starts, on free 127.0.0.1 ports, a trivial Starlette job and a stub Lifecycle (``servers.py``),
an nginx with a keep-alive upstream (``daemon off``, config in a temporary folder), and each
candidate proxy as its own process: ``pub`` is Pub as ``racetrack up`` runs it (``racetrack serve
pub``: the front server, the ASGI app behind it), ``fast`` the same pair started by
``python -m racetrack_core.pub``, ``pub_asgi`` the ASGI app alone as ``python -m
racetrack_core.pub.asgi`` serves it (uvicorn and Pub's own protocol), and the others the uvicorn
factories of ``candidates.py`` (uvloop and httptools when installed). Runs ``wrk -c32 -t2`` and
``wrk -c1 -t1 --latency`` against each and prints a markdown table. ``--workers N`` runs
``pub_asgi`` and nginx with N worker processes each, so that their ratio stays fair (the front
server has one). Every process it starts is stopped by its pid. Needs ``nginx`` and ``wrk``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
JOB_PATH = "/pub/job/bench/{version}/api/v1/perform"
#: Measured by default; ``httpx`` (15 times slower than the others) runs only when asked for.
CANDIDATES = ("raw", "aiohttp", "pub_plain", "pub_asgi", "pub", "fast")
ALL_CANDIDATES = (*CANDIDATES, "httpx")

NGINX_CONF = """\
worker_processes {workers};
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream job {{ server 127.0.0.1:{job_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://job;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


@dataclass
class Result:
    target: str
    rps32: float
    p50_32: float
    rps1: float
    p50_1: float
    #: CPU time the proxy process spent per request (c32 run): immune to other load on the box.
    cpu_us: float | None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its direct children (nginx's worker)."""
    ticks = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(child) for child in children.read_text().split()]
    total = 0.0
    for each in pids:
        fields = Path(f"/proc/{each}/stat").read_text().rpartition(")")[2].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process {process.args!r} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@contextmanager
def started(args: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[int]:
    process = subprocess.Popen(args, env={**os.environ, **(env or {})}, cwd=HERE)
    try:
        wait_until_listening(port, process)
        yield process.pid
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()


def pub_command(port: int, home: str) -> list[str]:
    """Pub as ``racetrack up`` runs it: ``racetrack serve pub`` (front server, app behind it)."""
    return [PYTHON, "-m", "racetrack_cli", "serve", "pub", "--home", home, "--pub-port", str(port)]


def pub_asgi_command(port: int, workers: int) -> list[str]:
    """Pub's ASGI app alone, as ``python -m racetrack_core.pub.asgi`` serves it."""
    return [PYTHON, "-m", "racetrack_core.pub.asgi", "--port", str(port), "--workers", str(workers)]


def fast_command(port: int) -> list[str]:
    """The front server and the app behind it, started without the CLI, one process."""
    return [PYTHON, "-m", "racetrack_core.pub", "--port", str(port)]


def uvicorn(factory: str, port: int) -> list[str]:
    args = [PYTHON, "-m", "uvicorn", "--factory", factory, "--app-dir", str(HERE)]
    args += [
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        # Pub's way (docs/pub.md): uvicorn must not rewrite the client from X-Forwarded-For.
        "--no-proxy-headers",
    ]
    if importlib.util.find_spec("uvloop"):
        args += ["--loop", "uvloop"]
    if importlib.util.find_spec("httptools"):
        args += ["--http", "httptools"]
    return args


def latency_ms(text: str) -> float:
    match = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if not match:
        raise RuntimeError(f"no p50 in wrk output:\n{text}")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def wrk(
    url: str, connections: int, threads: int, duration: int, token: bool
) -> tuple[float, float, int]:
    args = ["wrk", f"-c{connections}", f"-t{threads}", f"-d{duration}s", "--latency", url]
    if token:
        args[1:1] = ["-H", "X-Racetrack-Auth: bench-token"]
    text = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in text or "Socket errors" in text:
        raise RuntimeError(f"wrk saw errors against {url}:\n{text}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", text)
    count = re.search(r"(\d+) requests in", text)
    if not match or not count:
        raise RuntimeError(f"no Requests/sec in wrk output:\n{text}")
    return float(match.group(1)), latency_ms(text), int(count.group(1))


def measure(target: str, url: str, duration: int, token: bool, pid: int | None) -> Result:
    # The URLs are built above from 127.0.0.1 and a port: no other scheme can reach here.
    check = urllib.request.Request(url, headers={"X-Racetrack-Auth": "bench-token"})  # noqa: S310
    with urllib.request.urlopen(check, timeout=5) as response:  # noqa: S310
        assert response.status == 200, f"{target} answers {response.status}"
    wrk(url, 32, 2, 1, token)  # warm-up: pools, caches
    cpu_before = cpu_seconds(pid) if pid else 0.0
    rps32, p50_32, count = wrk(url, 32, 2, duration, token)
    cpu_us = (cpu_seconds(pid) - cpu_before) / count * 1e6 if pid else None
    rps1, p50_1, _ = wrk(url, 1, 1, duration, token)
    print(f"  {target}: {rps32:.0f} req/s c32, p50 {p50_1:.3f} ms c1", file=sys.stderr)
    return Result(target, rps32, p50_32, rps1, p50_1, cpu_us)


def table(results: list[Result]) -> str:
    direct = next(r for r in results if r.target == "direct")
    nginx = next((r for r in results if r.target == "nginx"), None)
    lines = [
        "| target | c32 req/s | c32 p50 ms | c1 req/s | c1 p50 ms | added p50 (c1) ms "
        "| c32 req/s vs nginx | proxy CPU µs/req |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        added = "" if r is direct else f"+{r.p50_1 - direct.p50_1:.3f}"
        ratio = f"{r.rps32 / nginx.rps32:.2f}" if nginx else "n/a"
        cpu = "" if r.cpu_us is None else f"{r.cpu_us:.0f}"
        lines.append(
            f"| {r.target} | {r.rps32:.0f} | {r.p50_32:.2f} | {r.rps1:.0f} | {r.p50_1:.3f} "
            f"| {added} | {ratio} | {cpu} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument(
        "--only",
        default=",".join(CANDIDATES),
        help=f"candidates to measure, of {', '.join(ALL_CANDIDATES)}",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes of Pub and of nginx alike"
    )
    options = parser.parse_args()
    unknown = set(options.only.split(",")) - set(ALL_CANDIDATES)
    if unknown:
        sys.exit(f"unknown candidates {', '.join(sorted(unknown))}; choose from {ALL_CANDIDATES}")
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install -y wrk)")
    job_port, lifecycle_port = free_port(), free_port()
    job_env = {"BENCH_JOB_URL": f"http://127.0.0.1:{job_port}"}
    results: list[Result] = []
    with (
        started(uvicorn("servers:job_app", job_port), job_port) as job_pid,
        started(uvicorn("servers:lifecycle_app", lifecycle_port), lifecycle_port, job_env),
    ):
        direct_url = f"http://127.0.0.1:{job_port}" + JOB_PATH.format(version="1.0.0")
        results.append(measure("direct", direct_url, options.duration, False, job_pid))
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if Path(nginx).exists():
            with tempfile.TemporaryDirectory(prefix="pub-bench-nginx-") as tmp:
                port = free_port()
                conf = Path(tmp, "nginx.conf")
                conf.write_text(
                    NGINX_CONF.format(
                        tmp=tmp, port=port, job_port=job_port, workers=options.workers
                    )
                )
                with started([nginx, "-c", str(conf), "-g", "daemon off;"], port) as pid:
                    url = f"http://127.0.0.1:{port}" + JOB_PATH.format(version="1.0.0")
                    results.append(measure("nginx", url, options.duration, False, pid))
        for name in options.only.split(","):
            port = free_port()
            env = {"BENCH_LIFECYCLE_URL": f"http://127.0.0.1:{lifecycle_port}"}
            env["PUB_LIFECYCLE_URL"] = env["BENCH_LIFECYCLE_URL"]
            env["RACETRACK_INTERNAL_LIFECYCLE_URL"] = env["BENCH_LIFECYCLE_URL"]
            env["PYTHONPATH"] = str(HERE.parent.parent)
            with tempfile.TemporaryDirectory(prefix="pub-bench-home-") as home:
                if name == "pub":
                    command = pub_command(port, home)
                elif name == "pub_asgi":
                    command = pub_asgi_command(port, options.workers)
                elif name == "fast":
                    command = fast_command(port)
                else:
                    command = uvicorn(f"candidates:{name}_app", port)
                with started(command, port, env) as pid:
                    url = f"http://127.0.0.1:{port}" + JOB_PATH.format(version="latest")
                    results.append(measure(name, url, options.duration, True, pid))
    print(table(results))


if __name__ == "__main__":
    main()
