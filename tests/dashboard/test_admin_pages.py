"""The Administration pages on a real ``racetrack up``: staff only, and each action done through
the Dashboard's forms is checked against the Lifecycle API.

The module shares one server, run by a Python environment of its own: installing a plugin
changes the environment of the server that installs it, which must not be the one running the
tests.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from racetrack_core.testing.server import QUICK_ENV, RacetrackServer
from tests.dashboard.htmlcheck import forms_without_csrf, unlabelled_controls
from tests.dashboard.web import WebSession, messages

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
SAMPLE_PLUGIN = REPO / "sample" / "plugins" / "racetrack-hello-jobtype"
PRIMER_DIR = REPO / "sample" / "python-primer"
PASSWORD = "correct horse battery"
ADMIN_PAGES = [
    "/dashboard/admin",
    "/dashboard/admin/users",
    "/dashboard/admin/escs",
    "/dashboard/admin/grants",
    "/dashboard/admin/public-endpoints",
    "/dashboard/admin/plugins",
    "/dashboard/admin/audit",
]
NEW_TOKEN = re.compile(r'<code id="new-token">([^<]+)</code>')


def uv() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


def run(*argv: str | Path) -> None:
    done = subprocess.run([str(arg) for arg in argv], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{argv}: {done.stderr}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RacetrackServer]:
    """``racetrack up`` run by a fresh environment with this repository installed, logged in
    as the admin."""
    root = tmp_path_factory.mktemp("admin-pages")
    env = root / "env"
    run(uv(), "venv", "--quiet", "--python", sys.executable, env)
    python = env / "bin" / "python"
    constraints: list[str | Path] = ["-c", REPO / "constraints.txt"]
    run(uv(), "pip", "install", "--quiet", "--python", python, *constraints, "-e", REPO)
    with RacetrackServer(root / "home", env=QUICK_ENV, python=str(python)) as started:
        started.login()
        yield started


@pytest.fixture
def staff(server: RacetrackServer) -> Iterator[WebSession]:
    """The admin, logged in to the Dashboard."""
    web = WebSession(server.dashboard)
    web.login("admin", server.admin_password)
    yield web
    web.close()


def register(server: RacetrackServer, username: str, activate: bool = False) -> None:
    answer = server.api(
        "POST", "/users/register", token=None, json={"username": username, "password": PASSWORD}
    )
    assert answer.status_code == 200, answer.text
    if activate:
        assert server.api("POST", f"/users/{username}/activate").status_code == 200


def user(server: RacetrackServer, username: str) -> dict[str, Any]:
    (found,) = [u for u in server.api("GET", "/users").json() if u["username"] == username]
    return dict(found)


def test_someone_not_staff_gets_403_everywhere_and_no_link(server: RacetrackServer) -> None:
    register(server, "plain@example.com", activate=True)
    web = WebSession(server.dashboard)
    try:
        web.login("plain@example.com", PASSWORD)
        profile = web.get("/dashboard/profile")
        assert profile.status_code == 200
        assert "plain@example.com" in profile.text
        assert ">Administration<" not in profile.text
        for path in [
            *ADMIN_PAGES,
            "/dashboard/admin/escs/any/delete",
            "/dashboard/admin/plugins/python3/uninstall",
        ]:
            answer = web.get(path)
            assert answer.status_code == 403, path
            assert "<h1>Staff only</h1>" in answer.text, path
        for action, data in [
            ("/dashboard/admin/escs", {"name": "sneaky"}),
            ("/dashboard/admin/users/plain@example.com/staff", {"is_staff": "true"}),
        ]:
            answer = web.submit("/dashboard/profile", action, data)
            assert answer.status_code == 403, action
    finally:
        web.close()
    assert "sneaky" not in [esc["name"] for esc in server.api("GET", "/escs").json()]
    assert user(server, "plain@example.com")["is_staff"] is False


def test_staff_activate_users_and_make_them_staff(
    server: RacetrackServer, staff: WebSession
) -> None:
    register(server, "new@example.com")
    assert '<a href="/dashboard/admin">Administration</a>' in staff.get("/dashboard/profile").text
    page = staff.get("/dashboard/admin/users").text
    rows = re.findall(r"<td data-label=\"User\"><span>([^<]+)<", page)
    assert rows[0] == "new@example.com", "inactive users come first"
    assert "/dashboard/admin/users/new%40example.com/activate" in page

    users = "/dashboard/admin/users"
    activated = staff.submit(users, f"{users}/new%40example.com/activate")
    assert activated.url.path == users
    assert messages(activated.text) == ["Activated new@example.com."]
    assert server.with_token("").login("new@example.com", PASSWORD)

    made = staff.submit(users, f"{users}/new%40example.com/staff", {"is_staff": "true"})
    assert messages(made.text) == ["new@example.com is staff now."]
    assert user(server, "new@example.com")["is_staff"] is True
    dropped = staff.submit(users, f"{users}/new%40example.com/staff", {"is_staff": "false"})
    assert messages(dropped.text) == ["new@example.com is no longer staff."]
    deactivated = staff.submit(users, f"{users}/new%40example.com/deactivate")
    assert messages(deactivated.text) == ["Deactivated new@example.com."]
    assert user(server, "new@example.com")["is_active"] is False

    myself = staff.submit(users, f"{users}/admin/deactivate")
    assert (myself.status_code, myself.url.path) == (200, users)
    assert messages(myself.text) == [
        "You cannot deactivate your own account; ask another staff member."
    ]
    assert 'class="message error"' in myself.text
    assert user(server, "admin")["is_active"] is True


def test_an_esc_token_is_shown_once_works_and_is_revoked(
    server: RacetrackServer, staff: WebSession
) -> None:
    escs = "/dashboard/admin/escs"
    created = staff.submit(escs, escs, {"name": "billing"})
    assert messages(created.text) == [
        "Created external consumer billing: give it a token, then grant it what it may call."
    ]
    (esc,) = [e for e in server.api("GET", "/escs").json() if e["name"] == "billing"]
    assert "No active token" in created.text

    refused = staff.submit(escs, f"{escs}/{esc['id']}/tokens", {"expires_in_days": "soon"})
    assert messages(refused.text) == [
        "'soon' is not a number of days: give a whole number, or leave the expiry empty for a "
        "token that does not expire."
    ]
    shown = staff.submit(escs, f"{escs}/{esc['id']}/tokens", {"expires_in_days": "30"})
    assert (shown.status_code, shown.url.path) == (200, f"{escs}/{esc['id']}/tokens")
    found = NEW_TOKEN.search(shown.text)
    assert found, shown.text
    token = found.group(1)
    assert '<button type="button" data-copy="new-token">Copy</button>' in shown.text
    assert "racetrack_flash" not in shown.headers.get("set-cookie", "")

    def whoami() -> httpx.Response:
        return server.api(
            "GET", "/users/validate_user_auth", token=None, headers={"X-Racetrack-Auth": token}
        )

    assert whoami().json()["username"] == "billing"
    assert whoami().json()["kind"] == "esc"
    listing = staff.get(escs).text
    assert token not in listing
    (record,) = server.api("GET", f"/escs/{esc['id']}/auth_data").json()["tokens"]
    assert f"<code>{record['hint']}</code>" in listing

    revoked = staff.submit(escs, f"{escs}/{esc['id']}/tokens/{record['id']}/revoke")
    assert messages(revoked.text) == [f"Revoked token {record['hint']}; it no longer works."]
    assert whoami().status_code == 401

    confirm = staff.get(f"{escs}/{esc['id']}/delete")
    assert "<h1>Delete external consumer billing?</h1>" in confirm.text
    assert f'href="{escs}">Cancel</a>' in confirm.text
    deleted = staff.submit(f"{escs}/{esc['id']}/delete", f"{escs}/{esc['id']}/delete")
    assert messages(deleted.text) == [
        "Deleted external consumer billing with its tokens and grants."
    ]
    assert "billing" not in [esc["name"] for esc in server.api("GET", "/escs").json()]


def test_grant_filter_and_revoke(server: RacetrackServer, staff: WebSession) -> None:
    register(server, "grantee@example.com", activate=True)
    grants = "/dashboard/admin/grants"
    form = {
        "subject_kind": "user",
        "subject_name": "grantee@example.com",
        "scope": "deploy_job",
        "job_family": "",
        "job_version": "",
        "endpoint": "",
    }
    granted = staff.submit(grants, grants, form)
    assert messages(granted.text) == ["Granted User grantee@example.com 'deploy_job' on every job."]

    def granted_deploy() -> list[dict[str, Any]]:
        listed = server.api("GET", "/grants", params={"subject_name": "grantee@example.com"})
        return [grant for grant in listed.json() if grant["scope"] == "deploy_job"]

    (grant,) = granted_deploy()
    assert (grant["job_family"], grant["granted_by"]) == (None, "admin")

    refused = staff.submit(grants, grants, {**form, "job_family": "nope"})
    assert messages(refused.text) == [
        "No job family named nope: deploy a job named nope first, then grant."
    ]
    assert 'class="message error"' in refused.text

    assert "grantee@example.com" in staff.get(grants, params={"subject": "grantee"}).text
    assert "grantee@example.com" not in staff.get(grants, params={"subject": "zzz"}).text

    revoked = staff.submit(grants, f"{grants}/{grant['id']}/revoke")
    assert messages(revoked.text) == ["The grant is revoked."]
    assert granted_deploy() == []


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample plugin, built as a wheel."""
    out = tmp_path_factory.mktemp("dist")
    run(uv(), "build", "--wheel", "--out-dir", out, SAMPLE_PLUGIN)
    (built,) = out.glob("racetrack_hello_jobtype-0.1.0-*.whl")
    return built


def test_install_a_plugin_wheel_and_uninstall_it(
    server: RacetrackServer, staff: WebSession, wheel: Path
) -> None:
    plugins = "/dashboard/admin/plugins"
    page = staff.get(plugins).text
    assert 'enctype="multipart/form-data"' in page
    assert '<label for="wheel">' in page

    notes = staff.submit(plugins, plugins, files={"wheel": ("notes.txt", b"hello", "text/plain")})
    assert messages(notes.text) == [
        "'notes.txt' is not a wheel: upload a .whl file (build one with 'uv build --wheel' in "
        "the plugin's folder)."
    ]
    installed = staff.submit(
        plugins, plugins, files={"wheel": (wheel.name, wheel.read_bytes(), "application/zip")}
    )
    assert messages(installed.text) == [f"Installed {wheel.name}: plugin hello 0.1.0."]
    assert "<code>hello:1.0.0</code>" in installed.text
    assert "hello:1.0.0" in server.api("GET", "/plugin/job_type/versions").json()

    confirm = staff.get(f"{plugins}/hello/uninstall")
    assert "<h1>Uninstall plugin hello?</h1>" in confirm.text
    removed = staff.submit(f"{plugins}/hello/uninstall", f"{plugins}/hello/uninstall")
    assert messages(removed.text) == ["Uninstalled plugin hello."]
    assert "hello" not in [p["name"] for p in server.api("GET", "/plugin").json()]

    built_in = staff.submit(plugins, f"{plugins}/python3/uninstall")
    assert built_in.url.path == plugins
    assert messages(built_in.text) == [
        "'python3' is a built-in plugin, part of the racetrack-platform distribution, and cannot "
        "be uninstalled; to turn it off, set RACETRACK_DISABLE_PLUGINS=python3."
    ]


def test_public_endpoint_requests_and_the_audit_log(
    server: RacetrackServer, staff: WebSession
) -> None:
    record = server.deploy_folder(PRIMER_DIR, manifest={"public_endpoints": ["/api/v1/perform"]})
    assert record["status"] == "done", f"{record}\n{server.log()}"
    endpoints = "/dashboard/admin/public-endpoints"
    page = staff.get(endpoints).text
    (request,) = server.api("GET", "/public-endpoints").json()
    assert "<code>/api/v1/perform</code>" in page
    assert "awaiting approval" in page
    approve = f"{endpoints}/{request['id']}/approve"
    assert f'action="{approve}"' in page

    approved = staff.submit(endpoints, approve)
    assert messages(approved.text) == [
        f"Approved /api/v1/perform of job primer {record['job_version']}: anyone may call it "
        "without a token."
    ]
    assert server.api("GET", "/public-endpoints").json()[0]["active"] is True
    revoked = staff.submit(endpoints, f"{endpoints}/{request['id']}/revoke")
    assert messages(revoked.text) == [
        f"Closed /api/v1/perform of job primer {record['job_version']}: calls need a token again."
    ]
    assert server.api("GET", "/public-endpoints").json()[0]["active"] is False

    register(server, "audited@example.com")
    staff.submit("/dashboard/admin/users", "/dashboard/admin/users/audited%40example.com/activate")
    audit = "/dashboard/admin/audit"
    everything = staff.get(audit).text
    assert "admin activated user audited@example.com" in everything
    for_primer = staff.get(audit, params={"job_name": "primer"}).text
    assert "admin deployed job primer" in for_primer
    assert "admin approved a public endpoint of job primer" in for_primer
    assert "audited@example.com" not in for_primer
    mine = staff.get(audit, params={"related_to_me": "true"}).text
    assert 'name="related_to_me" type="checkbox" value="true" checked' in mine
    assert "admin activated user audited@example.com" in mine


def every_admin_page(server: RacetrackServer, staff: WebSession) -> dict[str, str]:
    """Each Administration page by name, with an ESC and a token on them."""
    escs = "/dashboard/admin/escs"
    staff.submit(escs, escs, {"name": "shown"})
    (esc,) = [e for e in server.api("GET", "/escs").json() if e["name"] == "shown"]
    pages = {path: staff.get(path).text for path in ADMIN_PAGES}
    pages["new token"] = staff.submit(escs, f"{escs}/{esc['id']}/tokens").text
    pages["delete ESC"] = staff.get(f"{escs}/{esc['id']}/delete").text
    pages["uninstall plugin"] = staff.get("/dashboard/admin/plugins/local/uninstall").text
    staff.submit(f"{escs}/{esc['id']}/delete", f"{escs}/{esc['id']}/delete")
    return pages


def test_every_admin_form_carries_a_csrf_token_and_every_control_a_label(
    server: RacetrackServer, staff: WebSession
) -> None:
    for name, html in every_admin_page(server, staff).items():
        assert forms_without_csrf(html) == [], name
        assert unlabelled_controls(html) == [], name
        assert '<nav class="subnav" aria-label="Administration">' in html, name
        assert html.count('aria-current="page"') == 2, name
        assert html.count("<h1>") == 1, name


def test_every_admin_page_is_valid_html(
    server: RacetrackServer,
    staff: WebSession,
    html_validator: Callable[[dict[str, str]], list[str]],
) -> None:
    assert html_validator(every_admin_page(server, staff)) == []
