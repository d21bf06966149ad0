"""Stored XSS through the Dashboard of a real ``racetrack up``: markup put where a job's owner
controls the text (the manifest's ``owner_email``, labels and runtime variables, what the job
prints while it runs, the output of a job that crashes on start and so ends up in its
deployment's error, a registered user's name) is shown by every Dashboard page only escaped;
so is markup reflected from a page's address or a login attempt, and a job's name or version
cannot hold markup at all.

The pages are fetched as the logged-in admin through the Dashboard's own login form (no
browser: what matters is the HTML the server sends; ``dashboard.js`` writes text only with
``textContent``, which a test here keeps so).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from markupsafe import escape

from racetrack_core.testing.server import QUICK_ENV, RacetrackServer
from tests.dashboard.web import WebSession

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SCRIPT = "<script>alert(1)</script>"
IMAGE = "<img/src=x/onerror=alert(2)>"  # no spaces: it is also a valid owner_email's part
SVG = '"><svg onload=alert(3)>'  # breaks out of an attribute, if one quotes it badly
PAYLOADS = (SCRIPT, IMAGE, SVG)

SHOWN = """
import sys


class JobEntrypoint:
    def perform(self) -> str:
        print("PRINTED <script>alert(1)</script> <img/src=x/onerror=alert(2)>", flush=True)
        print('PRINTED "><svg onload=alert(3)>', file=sys.stderr, flush=True)
        return "<script>alert(1)</script>"

    def docs_input_example(self) -> dict:
        return {}
"""

CRASHING = """
import sys

print('CRASH <script>alert(1)</script> <img/src=x/onerror=alert(2)> "><svg onload=alert(3)>',
      file=sys.stderr, flush=True)
raise SystemExit(3)
"""

USERNAME = "<script>alert(1)</script>@x.example"


def write_job(folder: Path, name: str, entrypoint: str, extra: str = "") -> Path:
    folder.mkdir(parents=True)
    (folder / "job.yaml").write_text(
        textwrap.dedent(
            f"""\
            name: {name}
            version: 0.0.1
            owner_email: "{SCRIPT}{IMAGE}@example.com"
            jobtype: python3:latest
            jobtype_extra:
              entrypoint_path: entrypoint.py
              entrypoint_class: JobEntrypoint
            """
        )
        + extra
    )
    (folder / "entrypoint.py").write_text(entrypoint)
    return folder


LABELS = textwrap.dedent(
    f"""\
    labels:
      note: '{SCRIPT}'
      image: '{IMAGE}'
      quote: '{SVG}'
    runtime_env:
      GREETING: '{SCRIPT}{IMAGE}'
    """
)


class Site:
    def __init__(self, server: RacetrackServer, web: WebSession, deployments: list[str]) -> None:
        self.server = server
        self.web = web
        self.deployments = deployments


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("xss")
    (tmp / "home").mkdir()
    (tmp / "home" / "config.yaml").write_text(  # the crashing job gives up in a second or two
        "targets:\n  local:\n    restart_backoff_seconds: 0.1\n"
        "    restart_backoff_max_seconds: 0.2\n"
    )
    with RacetrackServer(tmp / "home", env=QUICK_ENV) as server:
        server.login()
        shown = server.deploy_folder(write_job(tmp / "shown", "shown", SHOWN, LABELS))
        assert shown["status"] == "done", f"{shown}\n{server.log()}"
        assert server.call("shown", "0.0.1", {}).status_code == 200
        crashed = server.deploy_folder(write_job(tmp / "crashing", "crashing", CRASHING))
        assert crashed["status"] == "failed", crashed
        assert "CRASH <script>" in crashed["error"], crashed["error"]
        registered = server.api(
            "POST", "/users/register", json={"username": USERNAME, "password": "Pass-word-1234"}
        )
        assert registered.status_code == 200, registered.text
        with WebSession(server.dashboard) as web:
            web.login("admin", server.admin_password)
            yield Site(server, web, [shown["id"], crashed["id"]])


def assert_only_escaped(html: str, expected: tuple[str, ...]) -> None:
    """No payload appears raw; each of ``expected`` appears escaped (so the page shows it)."""
    for payload in PAYLOADS:
        assert payload not in html
    lowered = html.lower()
    for marker in ("<script>alert", "<img/src=x", "<svg onload"):
        assert marker not in lowered, marker
    for payload in expected:
        assert str(escape(payload)) in html, f"{payload!r} not shown (escaped) on the page"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/dashboard/jobs", (SCRIPT, IMAGE)),  # the owner column
        ("/dashboard/jobs/shown/0.0.1", (SCRIPT, IMAGE, SVG)),  # owner, manifest (labels, env)
        ("/dashboard/jobs/shown/0.0.1/logs", (SCRIPT, IMAGE, SVG)),  # what the job printed
        ("/dashboard/deployments", ()),  # the crash's error, cut before the markup
        ("/dashboard/admin/users", (USERNAME,)),
    ],
)
def test_a_page_shows_stored_markup_only_escaped(
    site: Site, path: str, expected: tuple[str, ...]
) -> None:
    answer = site.web.get(path)
    assert answer.status_code == 200, answer.text[:500]
    assert answer.headers["content-type"].startswith("text/html")
    assert_only_escaped(answer.text, expected)


def test_a_failed_deployments_page_shows_the_crash_output_only_escaped(site: Site) -> None:
    answer = site.web.get(f"/dashboard/deployments/{site.deployments[1]}")
    assert answer.status_code == 200, answer.text[:500]
    assert_only_escaped(answer.text, (SCRIPT, IMAGE, SVG))


def test_the_deployment_status_the_page_polls_is_json_not_html(site: Site) -> None:
    answer = site.web.get(f"/dashboard/deployments/{site.deployments[1]}/status")
    assert answer.status_code == 200, answer.text[:500]
    assert answer.headers["content-type"].startswith("application/json")


def test_the_dashboards_script_writes_no_html() -> None:
    """What the page's script puts on the page (followed logs, polled deployment errors) goes
    in as text: no sink that parses HTML."""
    import racetrack_core.dashboard as dashboard

    script = (Path(dashboard.__file__).parent / "static" / "dashboard.js").read_text()
    sinks = re.findall(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(", script)
    assert sinks == []
    assert "textContent" in script


@pytest.mark.parametrize("field", ["name", "version"])
def test_markup_in_a_jobs_name_or_version_is_refused_at_deploy(site: Site, field: str) -> None:
    """Names and versions are part of URLs and titles: their patterns leave no room for
    markup, so it never gets stored."""
    manifest = {
        "name": "shown",
        "version": "0.0.2",
        "owner_email": "owner@example.com",
        "jobtype": "python3:latest",
        field: f"1.0.0-{SCRIPT}" if field == "version" else SCRIPT,
    }
    answer = site.server.api("POST", "/deploy", json={"manifest": manifest})
    assert answer.status_code == 400, answer.text
    assert field in answer.json()["error"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"/dashboard/jobs/{SCRIPT}/0.0.1", (SCRIPT,)),  # "not found", naming it
        (f"/dashboard/jobs/shown/{IMAGE}", (IMAGE,)),
        (f"/dashboard/deployments/{SCRIPT}", (SCRIPT,)),
        (f"/dashboard/jobs?q={SCRIPT}{SVG}", (SCRIPT + SVG,)),  # kept in the filter's field
        (f"/dashboard/jobs?status={IMAGE}&sort={SVG}&page={SCRIPT}", ()),  # replaced by defaults
    ],
)
def test_markup_in_a_pages_address_is_reflected_only_escaped(
    site: Site, path: str, expected: tuple[str, ...]
) -> None:
    answer = site.web.get(path)
    assert answer.status_code < 500, answer.text[:500]
    assert_only_escaped(answer.text, expected)


def test_markup_in_a_login_attempt_is_never_reflected_raw(site: Site) -> None:
    with WebSession(site.server.dashboard) as visitor:
        answer = visitor.submit(
            "/dashboard/login",
            "/dashboard/login",
            {"username": USERNAME + SVG, "password": IMAGE},
        )
    assert answer.status_code < 500, answer.text[:500]
    assert answer.url.path == "/dashboard/login"  # refused, the name kept in its field
    assert_only_escaped(answer.text, (USERNAME + SVG,))
