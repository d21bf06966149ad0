"""Response times of the Dashboard's pages with 1,000 jobs in the database.

Usage: ``.venv/bin/python bench/dashboard/run.py [--rounds 30] [--warmup 3]``

Fills a new SQLite database with the rows of ``seed.py`` (1,000 job versions in 300 families,
1,120 deployments, users, consumers, grants, audit events), then starts a real ``racetrack up``
on it (``racetrack_core.testing.server.RacetrackServer``: a fresh temporary home, free 127.0.0.1
ports, default settings). Logs in through the Dashboard's
login form, as a browser would (the form's CSRF token, then the session cookie), as the admin
and as a user who is not staff, registered and activated over the Lifecycle API and allowed to
read 30 families only.

Each page, and next to them every Lifecycle API call that the pages make (sent straight to
Lifecycle with the same person's token), is requested ``--warmup`` times untimed and then
``--rounds`` times, one request at a time over a kept-alive connection, in rounds that take
every target in turn, so that a burst of other work on the shared machine hits them all alike.
Reports the median and p95 of the wall time, and the server's CPU time per request (user +
system of the whole ``racetrack up`` process, read from ``/proc`` around each request; steadier
than wall time on a loaded machine). The goal, from the issue: every page's p95 under 100 ms.
An administration page that answers 404 (not written yet) and a job's log page that cannot be
read (the seeded jobs have no process) are listed as not measured. Prints a markdown report on
stdout; progress on stderr. The server is stopped by its pid; the temporary folder is removed.

The seeded jobs have no replica, so the job watcher (every 2 s by default) leaves them as they
are; it still reads every job row each time, and the report gives the idle server's CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx

from bench.dashboard.seed import Seeded, seed
from racetrack_core.testing.server import AUTH_HEADER, RacetrackServer

GOAL_MS = 100.0
#: How many families the user who is not staff may read.
USER_FAMILIES = 30
USER = "bench-viewer@example.com"
USER_PASSWORD = "a long bench password 7"  # noqa: S105 (a throwaway account)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: Seconds of the idle server's CPU time measured before the requests.
IDLE_S = 6.0


def say(text: str) -> None:
    print(f"  {text}", file=sys.stderr)


@dataclass
class Target:
    """One URL as one person requests it, with its timings.

    ``who`` is ``admin``, ``user`` (not staff) or ``anonymous``; ``calls`` are the Lifecycle
    API paths (under ``/api/v1``) that the page requests, which are timed on their own too.
    ``optional`` pages that do not answer 200 are reported as not measured.
    """

    path: str
    who: str
    calls: tuple[str, ...] = ()
    optional: bool = False
    #: The Lifecycle API itself rather than a Dashboard page.
    api: bool = False
    seconds: list[float] = field(default_factory=list)
    #: The status of each timed answer that was not 200 (those are timed all the same).
    errors: list[int] = field(default_factory=list)
    cpu_seconds: float = 0.0
    status: int = 0
    size: int = 0

    @property
    def client(self) -> str:
        return f"api-{self.who}" if self.api else self.who

    @property
    def label(self) -> str:
        return f"GET /api/v1{self.path}" if self.api else self.path

    @property
    def key(self) -> tuple[str, str]:
        return (self.who, self.label)

    def ms(self, quantile: float) -> float:
        """The ``quantile`` of the timed requests (nearest rank), in milliseconds."""
        ordered = sorted(self.seconds)
        return 1000 * ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]

    @property
    def p50(self) -> float:
        return 1000 * statistics.median(self.seconds)

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu_seconds / max(1, len(self.seconds))

    @property
    def failures(self) -> str:
        """The errors, as ``2 errors (503)``."""
        statuses = ", ".join(str(status) for status in sorted(set(self.errors)))
        return f"{len(self.errors)} error{'s' * (len(self.errors) != 1)} ({statuses})"

    @property
    def measured(self) -> bool:
        return self.status == 200


def page_targets(seeded: Seeded, user_job: tuple[str, str], esc_id: str) -> list[Target]:
    """The Dashboard's pages, each with the Lifecycle calls it makes (as its handler in
    ``racetrack_core/dashboard/*_pages.py`` does; every page first checks the session)."""
    me = "/users/validate_user_auth"
    listing = "/job_family/jobs?q={}&status=&sort={}&page=1&per_page=50"
    job = "/job/{}/{}".format(*(quote(part, safe="") for part in seeded.long_job))
    page = "/dashboard/jobs/" + job.removeprefix("/job/")
    user_job_api = "/job/{}/{}".format(*(quote(part, safe="") for part in user_job))
    user_page = "/dashboard/jobs/" + user_job_api.removeprefix("/job/")
    deployment = f"/deploy/{seeded.long_deployment}"
    build_log = f"{deployment}/build-logs?tail=0"
    shown = f"/dashboard/deployments/{seeded.long_deployment}"
    overview = ("/users", "/escs", "/grants", "/public-endpoints?pending=true", "/plugin")
    return [
        Target("/dashboard/jobs", "admin", (me, listing.format("", "updated"))),
        Target("/dashboard/jobs?q=score&sort=name", "admin", (me, listing.format("score", "name"))),
        Target(page, "admin", (me, job, "/grants/mine", history(seeded.long_job))),
        Target(f"{page}/build-logs", "admin", (me, job, f"{job}/build-logs?tail=0")),
        Target(f"{page}/logs", "admin", (me, job, f"{job}/logs?tail=200"), optional=True),
        Target("/dashboard/deployments", "admin", (me, "/deploy?limit=100")),
        Target(shown, "admin", (me, deployment, build_log)),
        Target(f"{shown}/status", "admin", (me, deployment, build_log)),
        Target("/dashboard/profile", "admin", (me, "/tokens")),
        Target("/dashboard/admin", "admin", (me, *overview), optional=True),
        Target("/dashboard/admin/users", "admin", (me, "/users"), optional=True),
        Target("/dashboard/admin/grants", "admin", (me, "/grants"), optional=True),
        Target("/dashboard/admin/audit", "admin", (me, "/audit/activity?limit=200"), True),
        Target("/dashboard/admin/escs", "admin", (me, "/escs?tokens=true"), optional=True),
        Target("/dashboard/admin/public-endpoints", "admin", (me, "/public-endpoints"), True),
        Target("/dashboard/admin/plugins", "admin", (me, "/plugin"), optional=True),
        Target("/dashboard/login", "anonymous"),
        Target("/dashboard/jobs", "user", (me, listing.format("", "updated"))),
        Target(user_page, "user", (me, user_job_api, "/grants/mine", history(user_job))),
        Target("/dashboard/deployments", "user", (me, "/deploy?limit=100")),
    ]


def history(job: tuple[str, str]) -> str:
    """The Lifecycle call behind a job page's list of that version's deployments."""
    name, version = (quote(part, safe="") for part in job)
    return f"/deploy?job_name={name}&job_version={version}&limit=10"


def api_targets(pages: list[Target]) -> list[Target]:
    """Each Lifecycle call that a page makes, once per person."""
    seen: dict[tuple[str, str], Target] = {}
    for page in pages:
        for call in page.calls:
            target = Target(call, page.who, api=True)
            seen.setdefault(target.key, target)
    return list(seen.values())


def placeholders(seeded: Seeded, user_job: tuple[str, str], esc_id: str) -> dict[str, str]:
    """The seeded names and ids in the paths, longest first, and what the report shows."""
    names = {quote(name, safe=""): "{name}" for name in (seeded.long_job[0], user_job[0])}
    names |= {quote(version, safe=""): "{version}" for version in (seeded.long_job[1], user_job[1])}
    names |= {seeded.long_deployment: "{id}", esc_id: "{id}"}
    return dict(sorted(names.items(), key=lambda item: -len(item[0])))


def server_cpu(pid: int) -> float:
    """User + system seconds of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def dashboard_login(base: str, username: str, password: str) -> httpx.Client:
    """A client holding the session cookie, logged in through the login form."""
    client = httpx.Client(base_url=base, timeout=30)
    form = client.get("/dashboard/login")
    form.raise_for_status()
    token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    answer = client.post(
        "/dashboard/login",
        data={"username": username, "password": password, "csrf_token": token, "next": ""},
    )
    if answer.status_code != 303 or AUTH_HEADER not in client.cookies:
        sys.exit(f"logging in to the Dashboard as {username} failed: {answer.status_code}")
    return client


def add_viewer(server: RacetrackServer, seeded: Seeded) -> tuple[str, tuple[str, str]]:
    """Register and activate a user who is not staff; let them read some families only.

    Returns their Lifecycle token and one job they may read."""
    for method, path, body in (
        ("POST", "/users/register", {"username": USER, "password": USER_PASSWORD}),
        ("POST", f"/users/{USER}/activate", None),
    ):
        server.api(method, path, json=body).raise_for_status()
    # A new user may read every job; this one only the families granted below.
    for row in server.api("GET", "/grants", params={"subject_name": USER}).json():
        if row["scope"] == "read_job" and row["job_family"] is None:
            server.api("DELETE", f"/grants/{row['id']}").raise_for_status()
    families = sorted(seeded.versions)[:: len(seeded.versions) // USER_FAMILIES][:USER_FAMILIES]
    for family in families:
        body = {"subject_kind": "user", "subject_name": USER, "scope": "read_job"}
        server.api("POST", "/grants", json={**body, "job_family": family}).raise_for_status()
    token = server.with_token("").login(USER, USER_PASSWORD)
    return token, (families[0], seeded.versions[families[0]][0])


def measure(
    targets: list[Target], clients: dict[str, httpx.Client], pid: int, rounds: int, warmup: int
) -> None:
    """Time every target in rounds, after a first request that checks its answer: a page
    that is not optional must answer 200; one that is but does not is left out. A later answer
    that is not 200 is counted as an error (and shown on stderr)."""
    for target in targets:
        answer = clients[target.client].get(target.path)
        target.status, target.size = answer.status_code, len(answer.content)
        if not target.measured and not target.optional:
            sys.exit(f"{target.label} as {target.who} answered {answer.status_code}: {why(answer)}")
    live = [target for target in targets if target.measured]
    say(f"{warmup} warm-up and {rounds} timed rounds of {len(live)} requests")
    for round_ in range(warmup + rounds):
        for target in live:
            client = clients[target.client]
            cpu_before = server_cpu(pid)
            started = time.perf_counter()
            answer = client.get(target.path)
            elapsed = time.perf_counter() - started
            cpu = server_cpu(pid) - cpu_before
            if answer.status_code != 200:
                say(f"{target.label} as {target.who} answered {answer.status_code}: {why(answer)}")
            if round_ >= warmup:
                target.seconds.append(elapsed)
                target.cpu_seconds += cpu
                if answer.status_code != 200:
                    target.errors.append(answer.status_code)


def why(answer: httpx.Response) -> str:
    """The sentence of an error page (``<p class="lead">``), or the start of the answer."""
    text = answer.text
    if '<p class="lead">' in text:
        return text.split('<p class="lead">', 1)[1].split("</p>", 1)[0]
    return text[:300]


@dataclass
class Run:
    seeded: Seeded
    pages: list[Target]
    calls: list[Target]
    #: Seeded names and ids in the paths, and the placeholders the report shows instead.
    names: dict[str, str]
    seed_s: float
    idle_cpu: float
    load_before: str
    load_after: str


def run(options: argparse.Namespace) -> Run:
    with tempfile.TemporaryDirectory(prefix="racetrack-bench-dashboard-") as folder:
        home = Path(folder, "home")
        database_url = f"sqlite:///{Path(folder, 'racetrack.db')}"
        started = time.monotonic()
        seeded = seed(database_url)
        seed_s = time.monotonic() - started
        say(f"seeded {seeded.counts} in {seed_s:.1f} s; starting racetrack up")
        with RacetrackServer(home, database_url, verbose=False) as server:
            assert server.process is not None
            pid = server.process.pid
            server.login()
            user_token, user_job = add_viewer(server, seeded)
            esc_id = server.api("GET", "/escs").json()[0]["id"]
            cpu_before = server_cpu(pid)
            time.sleep(IDLE_S)
            idle_cpu = (server_cpu(pid) - cpu_before) / IDLE_S
            api = f"{server.lifecycle}/api/v1"
            clients = {
                "admin": dashboard_login(server.dashboard, "admin", server.admin_password),
                "user": dashboard_login(server.dashboard, USER, USER_PASSWORD),
                "anonymous": httpx.Client(base_url=server.dashboard, timeout=30),
                **{
                    f"api-{who}": httpx.Client(
                        base_url=api, headers={AUTH_HEADER: token}, timeout=30
                    )
                    for who, token in (("admin", server.token), ("user", user_token))
                },
            }
            pages = page_targets(seeded, user_job, esc_id)
            calls = api_targets(pages)
            load_before = load_average()
            try:
                measure([*pages, *calls], clients, pid, options.rounds, options.warmup)
                load_after = load_average()
            finally:
                for client in clients.values():
                    client.close()
            result = Run(
                seeded,
                pages,
                calls,
                placeholders(seeded, user_job, esc_id),
                seed_s,
                idle_cpu,
                load_before,
                load_after,
            )
    return result


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def report(result: Run, options: argparse.Namespace) -> str:
    calls = {call.key: call for call in result.calls}

    def shown(path: str) -> str:
        for value, placeholder in result.names.items():
            path = path.replace(value, placeholder)
        return f"`{path}`"

    lines = ["### Dashboard pages (1,000 jobs)", "", "| goal | measured | met |", "|---|---:|---|"]
    for page in result.pages:
        goal = f"{shown(page.path)}{'' if page.who == 'admin' else f' ({page.who})'}: p95 < "
        goal += f"{GOAL_MS:.0f} ms"
        if page.measured:
            p95 = page.ms(0.95)
            errors = f", {page.failures}" if page.errors else ""
            ok = p95 < GOAL_MS and not page.errors
            lines.append(f"| {goal} | {p95:.1f} ms{errors} | {met(ok)} |")
        else:
            missing = "missing (404)" if page.status == 404 else f"answered {page.status}"
            lines.append(f"| {goal} | {missing} | not measured |")
    jobs = result.pages[0]
    listing = calls[
        ("admin", "GET /api/v1/job_family/jobs?q=&status=&sort=updated&page=1&per_page=50")
    ]
    manifest_kib, log_kib = (size / 1024 for size in result.seeded.long_sizes)
    counts = ", ".join(f"{n:,} {what}" for what, n in result.seeded.counts.items())
    lines += [
        f"| (for reference) `/dashboard/jobs` / `GET /api/v1/job_family/jobs`, p50 "
        f"| {jobs.p50 / listing.p50:.2f} ({jobs.p50:.1f} / {listing.p50:.1f} ms) | |",
        "",
        f"{options.warmup} untimed, then {options.rounds} timed requests per target, one at a "
        "time over a kept-alive connection, in rounds that take every target in turn; the "
        "Lifecycle calls are the pages' own, sent straight to Lifecycle with the same person's "
        "token (calls that a page makes at once are summed all the same). The database, seeded "
        f"in {result.seed_s:.0f} s: {counts}. The job pages show a version with a long manifest "
        f"({manifest_kib:.0f} KiB), the deployment pages one with a long build log "
        f"({log_kib:.0f} KiB). `racetrack up` on SQLite with its default settings; its CPU "
        "while idle, with the job watcher reading every job each 2 s: "
        f"{100 * result.idle_cpu:.1f}%. Server CPU is that of the whole process (Lifecycle and "
        "Dashboard) per request. Load average before: "
        f"{result.load_before}; after: {result.load_after}.",
        "",
        "| page | as | KiB | p50 ms | p95 ms | server CPU ms | errors | Lifecycle calls "
        "| their p50, summed, ms | page / calls (p50) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for page in result.pages:
        if not page.measured:
            continue
        own = [calls[(page.who, f"GET /api/v1{call}")] for call in page.calls]
        total = sum(call.p50 for call in own)
        lines.append(
            f"| {shown(page.path)} | {page.who} | {page.size / 1024:.0f} | {page.p50:.1f} "
            f"| {page.ms(0.95):.1f} | {page.cpu_ms:.1f} | {len(page.errors)} | {len(own)} "
            f"| {total:.1f} "
            f"| {f'{page.p50 / total:.2f}' if own else ''} |"
        )
    lines += [
        "",
        "| Lifecycle call | as | KiB | p50 ms | p95 ms | server CPU ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for call in result.calls:
        lines.append(
            f"| {shown(call.label)} | {call.who} | {call.size / 1024:.0f} | {call.p50:.1f} "
            f"| {call.ms(0.95):.1f} | {call.cpu_ms:.1f} | {len(call.errors)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="timed requests per target")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per target first")
    options = parser.parse_args()
    print(report(run(options), options))


if __name__ == "__main__":
    main()
