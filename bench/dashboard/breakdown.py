"""Where the time of the jobs list goes: Lifecycle's part, then the Dashboard's, each measured
in the benchmark's process with the project's own code, after the timed rounds.

Lifecycle's ``GET /api/v1/job`` (``list_jobs``) is taken apart into its steps, each called as
the route calls it, on the benchmark's database: reading every job row, checking a reader's
grants on each row (only for a person who is not staff), making each row's JSON record, and
encoding the answer. The Dashboard's ``GET /dashboard/jobs`` runs whole, in an app made by its
own factory whose Lifecycle is a stub answering with the bytes the real one sent (so the
Dashboard's own work is timed without the network or Lifecycle), with a stopwatch around the
functions that decode Lifecycle's JSON, group the jobs and render the template (a profiler
would slow the Python code far more than the JSON decoder, which is C, and skew the shares).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import jinja2
from sqlmodel import Session, col, select

from racetrack_core.dashboard import job_pages
from racetrack_core.dashboard.app import create_app
from racetrack_core.lifecycle.jobs import job_dto
from racetrack_core.lifecycle.permissions import allows
from racetrack_core.lifecycle.responses import JSONAnswer
from racetrack_core.settings import Settings
from racetrack_core.storage.database import connect
from racetrack_core.storage.models import Job, Permission, Scope
from racetrack_core.testserver import AUTH_HEADER

REPEATS = 10


def median_ms(step: Callable[[], Any], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def lifecycle_steps(database_url: str, viewer: str) -> list[tuple[str, float]]:
    """The steps of ``list_jobs``, in milliseconds (medians)."""
    engine = connect(database_url)
    with Session(engine) as session:

        def read() -> list[Job]:
            query = select(Job).order_by(
                col(Job.updated_at).desc(), col(Job.name), col(Job.version)
            )
            return list(session.exec(query))

        rows = read()
        grants = list(session.exec(select(Permission).where(Permission.subject_name == viewer)))
        records = [job_dto(row, "http://127.0.0.1/pub") for row in rows]
        steps = [
            (f"read {len(rows)} job rows", median_ms(read)),
            (
                f"check a reader's {len(grants)} grants on each row (not for staff)",
                median_ms(
                    lambda: [allows(grants, Scope.READ_JOB, r.name, r.version) for r in rows]
                ),
            ),
            (
                "make each row's record (`job_dto`)",
                median_ms(lambda: [job_dto(row, "http://127.0.0.1/pub") for row in rows]),
            ),
            (
                f"encode the answer, {len(JSONAnswer(records).body) / 2**20:.1f} MiB",
                median_ms(lambda: JSONAnswer(records).body),
            ),
        ]
    engine.dispose()
    return steps


@contextmanager
def stopwatch(spent: dict[str, float], parts: dict[str, tuple[Any, str]]) -> Iterator[None]:
    """Wrap each part's ``owner.name`` so that the seconds spent in it add up in ``spent``."""
    originals = [(owner, name, getattr(owner, name)) for owner, name in parts.values()]

    def timed(part: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[part] = spent.get(part, 0.0) + time.perf_counter() - started

        return wrapper

    for (part, (owner, name)), (_, _, original) in zip(parts.items(), originals, strict=True):
        setattr(owner, name, timed(part, original))
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def dashboard_steps(
    home: Path, answers: dict[str, bytes], cookie: str
) -> tuple[float, list[tuple[str, float]], int]:
    """The Dashboard's own time for ``/dashboard/jobs``, its parts, and the page's size (ms are
    medians over the requests)."""

    def lifecycle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=answers[request.url.path.split("/api/v1", 1)[1]])

    settings = Settings(home=home, internal_token="bench")  # noqa: S106 (signs CSRF tokens only)
    app = create_app(settings, lifecycle_transport=httpx.MockTransport(lifecycle))
    parts = {
        "decode Lifecycle's JSON (`httpx.Response.json`)": (httpx.Response, "json"),
        "group and sort the jobs (`families_of`)": (job_pages, "families_of"),
        "render the template (`jinja2.Template.render`)": (jinja2.Template, "render"),
    }
    spent: dict[str, float] = {}
    samples: list[dict[str, float]] = []

    async def requests() -> int:
        size = 0
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://dashboard",
            cookies={AUTH_HEADER: cookie},
        ) as client:
            for _ in range(REPEATS + 1):  # the first one compiles the templates
                spent.clear()
                started = time.perf_counter()
                answer = await client.get("/dashboard/jobs")
                samples.append({**spent, "total": time.perf_counter() - started})
                answer.raise_for_status()
                size = len(answer.content)
        return size

    with stopwatch(spent, parts):
        size = asyncio.run(requests())

    def median(part: str) -> float:
        return 1000 * statistics.median(sample.get(part, 0.0) for sample in samples[1:])

    shares = [(part, median(part)) for part in parts]
    total = median("total")
    rest = "the rest: Starlette, the stub's answers, the session and CSRF cookies, headers"
    return total, [*shares, (rest, total - sum(ms for _, ms in shares))], size


def report(
    database_url: str, home: Path, answers: dict[str, bytes], cookie: str, viewer: str
) -> str:
    """The markdown table of both parts."""
    lines = [
        "#### Where the jobs list's time goes",
        "",
        "| step | ms |",
        "|---|---:|",
    ]
    for step, ms in lifecycle_steps(database_url, viewer):
        lines.append(f"| Lifecycle `GET /api/v1/job`: {step} | {ms:.1f} |")
    total, parts, size = dashboard_steps(home, answers, cookie)
    lines.append(
        f"| Dashboard `GET /dashboard/jobs` without Lifecycle, {size / 2**20:.1f} MiB "
        f"| {total:.1f} |"
    )
    for part, ms in parts:
        lines.append(f"| … of which {part} | {ms:.1f} |")
    lines += [
        "",
        f"Medians of {REPEATS} runs in the benchmark's own process, after the timed rounds. "
        "The reader's grants are those of the user who is not staff; the admin's listing skips "
        "that step. The Dashboard's parts are timed by wrapping the functions named.",
    ]
    return "\n".join(lines)
