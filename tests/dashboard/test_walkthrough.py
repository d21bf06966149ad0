"""The Dashboard as a person uses it, in Debian's Chromium: register, wait for activation, get
activated by the admin, copy the login command from Profile, deploy with the CLI, find the job,
Open it and call it with Swagger's "Try it out", see why a broken deployment failed; and the
Administration pages stay closed to people who are not staff.

Every page visited is saved as a screenshot under ``test-output/screenshots/``, and every
Dashboard page among them is checked by the Nu Html Checker and for forms without CSRF tokens.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from racetrack_core.testing.server import RacetrackServer
from tests.dashboard.conftest import Screenshots
from tests.dashboard.htmlcheck import forms_without_csrf, unlabelled_controls
from tests.e2e.test_up import broken_job

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Locator, Page

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]
PRIMER_DIR = ROOT / "sample" / "python-primer"
BIN = Path(sys.executable).parent
USER = "jane.doe@example.com"
USER_PASSWORD = "Racetrack-Jane-42"


def racetrack(config_dir: Path, command: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """A ``racetrack`` command line, as a person would type it in a shell."""
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "RACETRACK_CONFIG_DIR": str(config_dir),
    }
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def nav(page: Page, name: str) -> Locator:
    """A link of the main navigation."""
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name)


def log_in(page: Page, server: RacetrackServer, username: str, password: str) -> None:
    page.goto(f"{server.dashboard}/dashboard/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_a_new_user_from_registration_to_calling_a_job(
    server: RacetrackServer,
    browser_context: BrowserContext,
    chromium: Browser,
    screenshots: Screenshots,
    html_validator: Callable[[dict[str, str]], list[str]],
    tmp_path: Path,
) -> None:
    page = browser_context.new_page()
    base = server.dashboard

    # Register, with the password rules on the page before anything is sent.
    page.goto(f"{base}/dashboard/")
    assert page.url == f"{base}/dashboard/login"
    screenshots.shot(page, "login")
    page.get_by_role("link", name="Register").first.click()
    assert "at least 8 characters" in page.locator("#password-rules").inner_text()
    page.get_by_label("E-mail address").fill(USER)
    page.get_by_label("Password", exact=True).fill("12345678")
    page.get_by_label("Password again").fill("12345678")
    page.get_by_role("button", name="Register").click()
    expect(page.locator(".message.error")).to_contain_text("all digits")
    screenshots.shot(page, "register-refused")
    page.get_by_label("Password", exact=True).fill(USER_PASSWORD)
    page.get_by_label("Password again").fill(USER_PASSWORD)
    page.get_by_role("button", name="Register").click()

    # Waiting for activation, also when trying to log in before it.
    expect(page.get_by_role("heading", name="Waiting for activation")).to_be_visible()
    expect(page.locator("#waiting")).to_contain_text(USER)
    screenshots.shot(page, "waiting")
    log_in(page, server, USER, USER_PASSWORD)
    expect(page.get_by_role("heading", name="Waiting for activation")).to_be_visible()

    # The admin activates the new account.
    admin_context = chromium.new_context()
    admin_context.set_default_timeout(15_000)
    admin = admin_context.new_page()
    log_in(admin, server, "admin", server.admin_password)
    nav(admin, "Administration").click()
    screenshots.shot(admin, "admin")
    admin.get_by_role("navigation", name="Administration").get_by_role("link", name="Users").click()
    screenshots.shot(admin, "admin-users")
    admin.locator("tr", has_text=USER).get_by_role("button", name="Activate").click()
    expect(admin.locator(".message").first).to_contain_text(f"Activated {USER}")
    screenshots.shot(admin, "admin-user-activated")
    admin_nav = admin.get_by_role("navigation", name="Administration")
    for section in ["External consumers", "Grants", "Public endpoints", "Plugins", "Audit"]:
        admin_nav.get_by_role("link", name=section).click()
        expect(admin_nav.get_by_role("link", name=section)).to_have_attribute(
            "aria-current", "page"
        )
        screenshots.shot(admin, "admin-" + section.lower().replace(" ", "-"))
    admin_context.close()

    # The user logs in, with the keyboard alone, and copies the login command from Profile.
    page.goto(f"{base}/dashboard/login")
    # The field's autofocus applies only in the focused tab; after the admin's context closed,
    # this one may not be, so the focus is put where autofocus puts it.
    page.bring_to_front()
    page.get_by_label("Username").focus()
    page.keyboard.type(USER)
    page.keyboard.press("Tab")
    page.keyboard.type(USER_PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible()
    screenshots.shot(page, "jobs-empty")
    nav(page, "Profile").click()
    page.get_by_role("button", name="Copy command").click()
    command = page.evaluate("navigator.clipboard.readText()")
    screenshots.shot(page, "profile")
    assert re.fullmatch(
        r"racetrack login rt_\S+ --remote http://127\.0\.0\.1:\d+/lifecycle", command
    )
    assert command.split()[-1] == server.lifecycle

    # ... and deploys python-primer with the CLI logged in by that command.
    config = tmp_path / "cli"
    logged_in = racetrack(config, command)
    assert logged_in.returncode == 0, logged_in.stderr
    deployed = racetrack(config, "racetrack deploy", cwd=PRIMER_DIR)
    assert deployed.returncode == 0, deployed.stderr

    # The job is in the list; Open leads to its Swagger page through Pub, where "Try it out"
    # works with the Dashboard's cookie alone.
    nav(page, "Jobs").click()
    row = page.locator("tbody[data-family='primer'] tr", has_text="0.0.1")
    assert "running" in row.inner_text()
    assert USER in row.inner_text()
    screenshots.shot(page, "jobs")
    row.get_by_role("link", name="primer 0.0.1").click()
    expect(page.get_by_role("heading", name="Manifest")).to_be_visible()
    screenshots.shot(page, "job")
    page.get_by_role("link", name="Logs", exact=True).click()
    page.get_by_role("button", name="Follow").click()
    expect(page.locator("[data-follow-state]")).to_contain_text("Following")
    expect(page.locator("#log")).to_contain_text("primer")
    screenshots.shot(page, "job-logs")
    page.get_by_role("link", name="Build log").click()
    screenshots.shot(page, "job-build-log")
    page.get_by_role("link", name="primer 0.0.1").click()
    page.get_by_role("link", name="Open").click()
    page.wait_for_url(re.compile(r".*/pub/job/primer/0\.0\.1/.*"))
    operation = page.locator(".opblock", has_text="/api/v1/perform")
    operation.locator(".opblock-summary").click()
    # The job's page opens operations ready to try; press "Try it out" where it is not.
    expect(operation.locator("textarea.body-param__text")).to_be_visible()
    try_it = operation.get_by_role("button", name="Try it out")
    if try_it.count():
        try_it.click()
    operation.locator("textarea.body-param__text").fill('{"number": 7907}')
    operation.get_by_role("button", name="Execute").click()
    answer = operation.locator(".live-responses-table .response-col_description pre").first
    answer.wait_for()
    assert answer.inner_text().strip() == "true"
    assert (
        operation.locator(".live-responses-table tbody .response-col_status")
        .first.inner_text()
        .strip()
        == "200"
    )
    screenshots.shot(page, "swagger-try-it-out")

    # Redeploy from the job's page: the deployment page follows it live until it is done.
    page.goto(f"{base}/dashboard/jobs/primer/0.0.1")
    page.get_by_role("button", name="Redeploy").click()
    expect(page.get_by_role("heading", name="Deployment of primer")).to_be_visible()
    expect(page.locator("[data-status]")).to_have_text("done", timeout=120_000)
    expect(page.locator("[data-phases]")).to_contain_text("switching traffic")
    expect(page.get_by_role("link", name="Go to the job")).to_be_visible()
    screenshots.shot(page, "deployment-live")

    # On a phone's width the jobs list still fits the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/dashboard/jobs")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshots.shot(page, "jobs-phone")
    page.set_viewport_size({"width": 1280, "height": 800})

    # A broken job: its deployment shows the error and the build log.
    failed = racetrack(
        config, f"racetrack deploy {shlex.quote(str(broken_job(tmp_path / 'broken', 'broken')))}"
    )
    assert failed.returncode == 3, failed.stderr
    page.goto(f"{base}/dashboard/deployments")
    screenshots.shot(page, "deployments")
    page.locator("tr", has_text="broken 0.0.1").get_by_role("link").first.click()
    expect(page.locator("[data-status]")).to_contain_text("failed")
    expect(page.locator("[data-error]")).to_be_visible()
    assert "this job cannot start" in page.locator("[data-build-log]").inner_text()
    screenshots.shot(page, "deployment-failed")

    # Not staff: no Administration link, and its pages answer 403.
    expect(nav(page, "Administration")).to_have_count(0)
    refused = page.goto(f"{base}/dashboard/admin/users")
    assert refused is not None
    assert refused.status == 403
    expect(page.get_by_role("heading", name="Staff only")).to_be_visible()
    screenshots.shot(page, "admin-refused")

    # Delete, after a confirmation page.
    page.goto(f"{base}/dashboard/jobs/primer/0.0.1")
    page.get_by_role("link", name="Delete").click()
    expect(page.get_by_role("heading", name="Delete primer 0.0.1?")).to_be_visible()
    screenshots.shot(page, "job-delete")
    page.get_by_role("button", name="Delete primer 0.0.1").click()
    expect(page.locator(".message").first).to_contain_text("Deleted job primer version 0.0.1")
    expect(page.locator("tbody[data-family='primer']")).to_have_count(0)
    screenshots.shot(page, "jobs-after-delete")

    ours = {name: html for name, html in screenshots.pages.items() if "swagger" not in name}
    problems = html_validator(ours)
    assert problems == []
    for name, html in ours.items():
        assert forms_without_csrf(html) == [], name
        assert unlabelled_controls(html) == [], name
