"""Run every benchmark and print one markdown report: ``python -m bench [--write]``.

Each benchmark is its own script, run here as a subprocess that prints its markdown on stdout
(passed through) and its progress on stderr; each starts and stops its own processes on free
127.0.0.1 ports and removes its temporary folders:

- ``bench/wrapper/run.py``: the python3 job wrapper against a bare Starlette app;
- ``bench/deploy/run.py``: deploy time, phases and memory of ``sample/python-primer``;
- ``bench/pub/run.py``: Pub's hot path against the job directly, nginx and other clients.
- ``bench/cli/run.py``: start-up of ``racetrack --help`` and ``racetrack list`` against the
  ``racetrack-client`` package from PyPI (with hyperfine).

``--write`` also puts the report into ``docs/performance.md``, between its markers, below the
hand-written introduction. Needs ``wrk`` and ``nginx`` (``apt-get install -y wrk nginx``), and
``hyperfine`` for ``cli``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
BEGIN = "<!-- bench: begin (written by `python -m bench --write`) -->"
END = "<!-- bench: end -->"


@dataclass(frozen=True)
class Benchmark:
    name: str
    script: Path
    #: The script's arguments, from this command's options.
    arguments: Callable[[argparse.Namespace], list[str]]
    #: Turns the script's output into the section of the report.
    section: Callable[[str], str] = lambda output: output


def pub_section(output: str) -> str:
    """Issue 3's goals for Pub, read from the ``pub`` row (what ``racetrack up`` runs), then
    the Pub benchmark's own table."""
    lines = ["### Pub hot path", ""]
    row = next((line for line in output.splitlines() if line.startswith("| pub |")), None)
    if row is not None:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        ratio, added = float(cells[6]), float(cells[5].lstrip("+"))
        lines += [
            "| goal | measured | met |",
            "|---|---:|---|",
            f"| Pub's c32 req/s at least 0.5 of nginx's, auth on every call | {ratio:.2f} "
            f"| {_met(ratio >= 0.5)} |",
            f"| Pub adds under 0.3 ms to the direct call's p50 at c1 | +{added:.3f} ms "
            f"| {_met(added < 0.3)} |",
            f"| (for reference) Pub's CPU per proxied call | {cells[7]} µs | |",
            "",
            "Pub's own table, from `bench/pub/run.py` (see `docs/pub.md` for the method):",
            "",
        ]
    return "\n".join([*lines, output.strip()])


def _met(passed: bool) -> str:
    return "met" if passed else "**not met**"


#: Pub's candidates measured here: ``pub`` is what ``racetrack up`` serves (the fast server with
#: the ASGI app behind it), ``pub_asgi`` the ASGI app alone (for embedding), ``aiohttp`` the
#: bare client the ASGI app uses. The others (docs/pub.md) stay available in bench/pub/run.py.
PUB_CANDIDATES = "pub,pub_asgi,aiohttp"

BENCHMARKS = (
    Benchmark(
        "wrapper",
        ROOT / "bench" / "wrapper" / "run.py",
        lambda options: ["--duration", str(options.duration), "--repeats", str(options.repeats)],
    ),
    Benchmark("deploy", ROOT / "bench" / "deploy" / "run.py", lambda options: []),
    Benchmark(
        "pub",
        ROOT / "bench" / "pub" / "run.py",
        lambda options: ["--duration", str(options.duration), "--only", PUB_CANDIDATES],
        pub_section,
    ),
    Benchmark("cli", ROOT / "bench" / "cli" / "run.py", lambda options: []),
)


def machine() -> str:
    """CPU model, cores and memory of this machine, in one line."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory = int(line.split()[1]) * 1024
    return f"{model}, {os.cpu_count()} cores, {memory / 2**30:.0f} GiB, Linux {platform.release()}"


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def run(benchmark: Benchmark, options: argparse.Namespace) -> tuple[str, bool]:
    """The benchmark's section of the report, and whether the script succeeded."""
    print(f"bench: {benchmark.name}", file=sys.stderr)
    command = [sys.executable, str(benchmark.script), *benchmark.arguments(options)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        return (
            f"### {benchmark.name}\n\nFailed: `{' '.join(command[1:])}` exited with "
            f"{done.returncode}; its output is on stderr.",
            False,
        )
    return benchmark.section(done.stdout), True


def report(options: argparse.Namespace) -> tuple[str, bool]:
    started = time.monotonic()
    load_before = load_average()
    sections, ok = [], True
    for benchmark in BENCHMARKS:
        if benchmark.name in options.only:
            section, succeeded = run(benchmark, options)
            sections.append(section)
            ok = ok and succeeded
    body = "\n\n".join(sections)
    # Rows of the goal tables, not their headers ("| goal | measured | met |").
    met = len(re.findall(r"^\| (?!goal \|).*\| met \|$", body, re.MULTILINE))
    missed = len(re.findall(r"^\|.*\| \*\*not met\*\* \|$", body, re.MULTILINE))
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = [
        f"Measured {today} on {machine()}, Python {platform.python_version()}, "
        f"in {time.monotonic() - started:.0f} s. Load average (1, 5, 15 min) before: "
        f"{load_before}; after: {load_average()}.",
        "",
        f"**Goals met: {met} of {met + missed}.**",
    ]
    return "\n".join(header) + "\n\n" + body + "\n", ok


def write(text: str) -> None:
    """Replace what is between the markers of docs/performance.md with ``text``."""
    document = DOC.read_text(encoding="utf-8")
    if BEGIN not in document or END not in document:
        sys.exit(f"{DOC} lacks the markers {BEGIN!r} and {END!r}; add them below the intro")
    head, rest = document.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(f"{head}{BEGIN}\n{text}{END}{tail}", encoding="utf-8")
    print(f"bench: wrote {DOC.relative_to(ROOT)}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=2, help="wrapper c32 runs per target")
    names = [benchmark.name for benchmark in BENCHMARKS]
    parser.add_argument(
        "--only",
        type=lambda value: value.split(","),
        default=names,
        help=f"comma-separated benchmarks to run (default: {','.join(names)})",
    )
    options = parser.parse_args()
    unknown = set(options.only) - set(names)
    if unknown:
        parser.error(f"unknown benchmark {', '.join(sorted(unknown))}; choose from {names}")
    tools = ("wrk", "nginx", *(("hyperfine",) if "cli" in options.only else ()))
    missing = [tool for tool in tools if not shutil.which(tool, path=_path())]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: apt-get install -y {' '.join(missing)}")
    text, ok = report(options)
    print(text)
    if options.write:
        if ok:
            write(text)
        else:
            print("bench: a benchmark failed; docs/performance.md is unchanged", file=sys.stderr)
    sys.exit(0 if ok else 1)


def _path() -> str:
    # nginx lives in /usr/sbin, which is not on every user's PATH.
    return os.environ.get("PATH", "") + os.pathsep + "/usr/sbin"


if __name__ == "__main__":
    main()
