"""Run every benchmark and print one markdown report: ``python -m bench [--write]``.

Each benchmark is its own script, run here as a subprocess that prints its markdown on stdout
(passed through) and its progress on stderr; each starts and stops its own processes on free
127.0.0.1 ports and removes its temporary folders:

- ``bench/wrapper/run.py``: the python3 job wrapper against a bare Starlette app;
- ``bench/deploy/run.py``: deploy time, phases and memory of ``sample/python-primer``;
- ``bench/docker/run.py``: the same job on the Docker target beside the local target, in one
  run: deploy times, image size, idle memory, and their ratios;
- ``bench/golang/run.py``: the golang wrapper against a bare ``net/http`` handler, golang
  against python3 through Pub, deploy times and image sizes of golang and docker-proxy jobs;
- ``bench/pub/run.py``: Pub's hot path against the job directly, nginx and other clients.
- ``bench/cli/run.py``: start-up of ``racetrack --help`` and ``racetrack list`` against the
  ``racetrack-client`` package from PyPI (with hyperfine).
- ``bench/dashboard/run.py``: the Dashboard's pages with 1,000 jobs in the database, next to
  the Lifecycle API calls behind them.

``--write`` also puts the report into ``docs/performance.md``, below the hand-written
introduction: each benchmark's section between markers of its own, so that a run with
``--only`` replaces the sections of the benchmarks it ran and keeps the others. Needs ``wrk``
for ``wrapper``, ``golang`` and ``pub``, ``go`` and ``docker`` for ``golang``, ``nginx`` for
``pub`` and ``hyperfine`` for ``cli``.
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
#: Around each benchmark's section inside the block, so that one can be replaced alone.
SECTION = re.compile(r"<!-- bench: (\w+) -->\n(.*?)<!-- bench: \1 end -->", re.DOTALL)


@dataclass(frozen=True)
class Benchmark:
    name: str
    script: Path
    #: The script's arguments, from this command's options.
    arguments: Callable[[argparse.Namespace], list[str]]
    #: Turns the script's output into the section of the report.
    section: Callable[[str], str] = lambda output: output
    #: Programs the script runs, which must be installed.
    tools: tuple[str, ...] = ()


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


#: Pub's candidates measured here: ``pub`` is what ``racetrack up`` serves (the front server with
#: the ASGI app behind it), ``pub_asgi`` the ASGI app alone (for embedding), ``aiohttp`` the
#: bare client the ASGI app uses. The others (docs/pub.md) stay available in bench/pub/run.py.
PUB_CANDIDATES = "pub,pub_asgi,aiohttp"

BENCHMARKS = (
    Benchmark(
        "wrapper",
        ROOT / "bench" / "wrapper" / "run.py",
        lambda options: ["--duration", str(options.duration), "--repeats", str(options.repeats)],
        tools=("wrk",),
    ),
    Benchmark("deploy", ROOT / "bench" / "deploy" / "run.py", lambda options: []),
    Benchmark(
        "docker", ROOT / "bench" / "docker" / "run.py", lambda options: [], tools=("docker",)
    ),
    Benchmark(
        "golang",
        ROOT / "bench" / "golang" / "run.py",
        lambda options: ["--duration", str(options.duration), "--repeats", str(options.repeats)],
        tools=("wrk", "go", "docker"),
    ),
    Benchmark(
        "pub",
        ROOT / "bench" / "pub" / "run.py",
        lambda options: ["--duration", str(options.duration), "--only", PUB_CANDIDATES],
        pub_section,
        tools=("wrk", "nginx"),
    ),
    Benchmark("cli", ROOT / "bench" / "cli" / "run.py", lambda options: [], tools=("hyperfine",)),
    Benchmark("dashboard", ROOT / "bench" / "dashboard" / "run.py", lambda options: []),
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
    """The benchmark's section of the report, which says when and where it was measured, and
    whether the script succeeded."""
    print(f"bench: {benchmark.name}", file=sys.stderr)
    started, load_before = time.monotonic(), load_average()
    command = [sys.executable, str(benchmark.script), *benchmark.arguments(options)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        return (
            f"### {benchmark.name}\n\nFailed: `{' '.join(command[1:])}` exited with "
            f"{done.returncode}; its output is on stderr.",
            False,
        )
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    measured = (
        f"Measured {today} on {machine()}, Python {platform.python_version()}, in "
        f"{time.monotonic() - started:.0f} s. Load average (1, 5, 15 min) before: "
        f"{load_before}; after: {load_average()}."
    )
    heading, _, body = benchmark.section(done.stdout).strip().partition("\n")
    return f"{heading}\n\n{measured}\n\n{body.strip()}\n", True


def goals(text: str) -> str:
    """``**Goals met: M of N.**``, counted over the goal tables' rows in ``text``."""
    # Rows of the goal tables, not their headers ("| goal | measured | met |").
    met = len(re.findall(r"^\| (?!goal \|).*\| met \|$", text, re.MULTILINE))
    missed = len(re.findall(r"^\|.*\| \*\*not met\*\* \|$", text, re.MULTILINE))
    return f"**Goals met: {met} of {met + missed}.**"


def report(options: argparse.Namespace) -> tuple[dict[str, str], list[str]]:
    """The sections of the benchmarks in ``--only`` that succeeded, by name, and those of the
    ones that failed."""
    sections, failures = {}, []
    for benchmark in BENCHMARKS:
        if benchmark.name in options.only:
            section, succeeded = run(benchmark, options)
            if succeeded:
                sections[benchmark.name] = section
            else:
                failures.append(section)
    return sections, failures


def write(sections: dict[str, str]) -> None:
    """Replace these benchmarks' sections of docs/performance.md, keep the others', and count
    the goals of all of them again."""
    document = DOC.read_text(encoding="utf-8")
    if BEGIN not in document or END not in document:
        sys.exit(f"{DOC} lacks the markers {BEGIN!r} and {END!r}; add them below the intro")
    head, rest = document.split(BEGIN, 1)
    block, tail = rest.split(END, 1)
    kept = dict(SECTION.findall(block))
    stray = [line for line in SECTION.sub("", block).splitlines() if line.strip()]
    if stray and not (len(stray) == 1 and stray[0].startswith("**Goals met:")):
        sys.exit(
            f"{DOC}'s results have text outside the markers of a benchmark's section, which "
            f"writing would lose (from {stray[0][:60]!r}): put each section between "
            "<!-- bench: NAME --> and <!-- bench: NAME end -->"
        )
    merged = {
        benchmark.name: sections.get(benchmark.name, kept.get(benchmark.name, ""))
        for benchmark in BENCHMARKS
    }
    merged.update({name: text for name, text in kept.items() if name not in merged})
    body = "\n".join(
        f"<!-- bench: {name} -->\n{text.strip()}\n<!-- bench: {name} end -->\n"
        for name, text in merged.items()
        if text
    )
    summary = f"{goals(body)} Each section says when it was measured."
    DOC.write_text(f"{head}{BEGIN}\n{summary}\n\n{body}{END}{tail}", encoding="utf-8")
    print(f"bench: wrote {', '.join(sections)} into {DOC.relative_to(ROOT)}", file=sys.stderr)


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
    tools = {tool for b in BENCHMARKS if b.name in options.only for tool in b.tools}
    missing = sorted(tool for tool in tools if not shutil.which(tool, path=_path()))
    if missing:
        sys.exit(f"missing {', '.join(missing)}: apt-get install -y {' '.join(missing)}")
    sections, failures = report(options)
    text = "\n".join([*sections.values(), *failures])
    print(f"{goals(text)}\n\n{text}")
    if options.write and sections:
        write(sections)
    if failures:
        print("bench: a benchmark failed; its section of the doc is unchanged", file=sys.stderr)
    sys.exit(1 if failures else 0)


def _path() -> str:
    # nginx lives in /usr/sbin, which is not on every user's PATH.
    return os.environ.get("PATH", "") + os.pathsep + "/usr/sbin"


if __name__ == "__main__":
    main()
