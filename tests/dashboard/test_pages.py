"""The Dashboard's pages over HTTP, against a real ``racetrack up``: sessions and their cookie,
CSRF refusals, redirects, Profile actions, the jobs list's grouping, filters and rights, and
the pages' answers when Lifecycle is down. The browser walk is in ``test_walkthrough.py``."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from racetrack_core.dashboard import create_app
from racetrack_core.dashboard.admin_pages import GRANTS_PER_PAGE
from racetrack_core.dashboard.app import routes as dashboard_routes
from racetrack_core.dashboard.job_pages import FAMILIES_PER_PAGE, Rights
from racetrack_core.dashboard.pages import Viewer, safe_next
from racetrack_core.dashboard.times import ago
from racetrack_core.settings import Settings
from racetrack_core.storage.models import Scope
from racetrack_core.testing.server import RacetrackServer, free_port
from tests.dashboard.htmlcheck import forms_without_csrf, unlabelled_controls
from tests.dashboard.web import CSRF_PATTERN, WebSession, messages
from tests.lifecycle.records import add_jobs

USER = "sam@example.com"
USER_PASSWORD = "Sam-likes-trains-9"


@pytest.fixture(scope="module")
def server(server: RacetrackServer) -> RacetrackServer:
    """The module's server, with the admin logged in and USER registered and activated."""
    server.login("admin", server.admin_password)
    registered = server.api(
        "POST", "/users/register", json={"username": USER, "password": USER_PASSWORD}
    )
    assert registered.status_code == 200, registered.text
    assert server.api("POST", f"/users/{USER}/activate").status_code == 200
    return server


@pytest.fixture
def visitor(server: RacetrackServer) -> Iterator[WebSession]:
    session = WebSession(server.dashboard)
    yield session
    session.close()


@pytest.fixture
def admin(server: RacetrackServer, visitor: WebSession) -> WebSession:
    visitor.login("admin", server.admin_password)
    return visitor


@pytest.fixture
def user(visitor: WebSession) -> WebSession:
    visitor.login(USER, USER_PASSWORD)
    return visitor


def set_cookies(answer: httpx.Response) -> dict[str, SimpleCookie]:
    found = {}
    for header in answer.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        for name in cookie:
            found[name] = cookie
    return found


# --- sessions ---------------------------------------------------------------------------------


def test_login_sets_an_http_only_lax_session_cookie(server: RacetrackServer) -> None:
    with WebSession(server.dashboard) as visitor:
        token = visitor.csrf("/dashboard/login")
        answer = visitor.client.post(
            "/dashboard/login",
            data={"csrf_token": token, "username": USER, "password": USER_PASSWORD},
            follow_redirects=False,
        )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/jobs"
    morsel = set_cookies(answer)["X-Racetrack-Auth"]["X-Racetrack-Auth"]
    assert morsel.value.startswith("rt_")
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "lax"
    assert morsel["path"] == "/"
    # The token is the session: Lifecycle knows whose it is.
    me = server.api("GET", "/users/validate_user_auth", token=morsel.value).json()
    assert me["username"] == USER


def test_a_wrong_password_is_refused_on_the_login_page(visitor: WebSession) -> None:
    answer = visitor.submit(
        "/dashboard/login", "/dashboard/login", {"username": USER, "password": "not-it-at-all"}
    )
    assert answer.status_code == 401
    assert messages(answer.text) == ["incorrect username or password"]
    assert "X-Racetrack-Auth" not in visitor.client.cookies


def test_pages_need_a_session_and_come_back_after_login(visitor: WebSession) -> None:
    answer = visitor.get("/dashboard/deployments?x=1", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/login?next=%2Fdashboard%2Fdeployments%3Fx%3D1"
    page = visitor.get(answer.headers["location"])
    assert 'name="next" value="/dashboard/deployments?x=1"' in page.text
    back = visitor.submit(
        answer.headers["location"],
        "/dashboard/login",
        {"username": USER, "password": USER_PASSWORD, "next": "/dashboard/deployments?x=1"},
    )
    assert back.url.path == "/dashboard/deployments"


@pytest.mark.parametrize(
    "target",
    ["https://elsewhere.example.com/", "//elsewhere.example.com/dashboard/", "/lifecycle/docs", ""],
)
def test_login_never_redirects_outside_the_dashboard(target: str) -> None:
    assert safe_next(target) == "/dashboard/jobs"


def test_logout_ends_the_session(user: WebSession) -> None:
    answer = user.submit("/dashboard/jobs", "/dashboard/logout")
    assert answer.url.path == "/dashboard/login"
    assert messages(answer.text) == ["You are logged out."]
    assert user.get("/dashboard/jobs", follow_redirects=False).status_code == 303


def test_a_revoked_session_token_sends_back_to_login(
    server: RacetrackServer, user: WebSession
) -> None:
    token = user.client.cookies["X-Racetrack-Auth"]
    tokens = server.api("GET", "/tokens", token=token).json()
    mine = next(row for row in tokens if token.endswith(row["hint"].lstrip("…")))
    assert server.api("DELETE", f"/tokens/{mine['id']}", token=token).status_code == 200
    answer = user.get("/dashboard/profile", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/dashboard/login")


# --- CSRF -------------------------------------------------------------------------------------


def test_forms_without_a_valid_token_are_refused(server: RacetrackServer, user: WebSession) -> None:
    valid = user.csrf("/dashboard/profile")
    for token in ["", "0" * 64, valid[:-1] + ("0" if valid[-1] != "0" else "1")]:
        answer = user.client.post("/dashboard/profile/token", data={"csrf_token": token})
        assert answer.status_code == 403
        assert "Reload the page" in answer.text
    # A token belongs to its own browser's cookie: another browser's token does not fit.
    with WebSession(server.dashboard) as stranger:
        foreign = stranger.csrf("/dashboard/login")
    refused = user.client.post("/dashboard/profile/token", data={"csrf_token": foreign})
    assert refused.status_code == 403
    # Nothing happened: the session token still works.
    assert user.get("/dashboard/profile").url.path == "/dashboard/profile"


@pytest.mark.parametrize(
    "headers",
    [{"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://attacker.example.com"}],
)
def test_forms_sent_from_another_site_are_refused(
    user: WebSession, headers: dict[str, str]
) -> None:
    token = user.csrf("/dashboard/jobs")
    answer = user.client.post(
        "/dashboard/logout", data={"csrf_token": token}, headers=headers, follow_redirects=False
    )
    assert answer.status_code == 403
    assert "from another site" in answer.text


def test_answers_carry_security_headers(visitor: WebSession) -> None:
    answer = visitor.get("/dashboard/login")
    policy = answer.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"
    morsel = set_cookies(answer)["racetrack_csrf"]["racetrack_csrf"]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "strict"
    static = visitor.get("/dashboard/static/dashboard.js")
    assert static.status_code == 200
    assert "cache-control" not in static.headers


# --- Profile ----------------------------------------------------------------------------------


def test_profile_shows_the_session_token_and_its_login_command(
    server: RacetrackServer, user: WebSession
) -> None:
    token = user.client.cookies["X-Racetrack-Auth"]
    page = user.get("/dashboard/profile").text
    assert f"racetrack login {token} --remote {server.lifecycle}" in page
    assert "this session" in page


def test_regenerating_the_token_replaces_the_session(
    server: RacetrackServer, user: WebSession
) -> None:
    before = user.client.cookies["X-Racetrack-Auth"]
    answer = user.submit("/dashboard/profile", "/dashboard/profile/token")
    assert answer.url.path == "/dashboard/profile"
    assert "former one no longer works" in messages(answer.text)[0]
    after = user.client.cookies["X-Racetrack-Auth"]
    assert after != before
    assert after in answer.text
    assert server.api("GET", "/users/validate_user_auth", token=before).status_code == 401
    assert server.api("GET", "/users/validate_user_auth", token=after).status_code == 200


def test_changing_the_password(server: RacetrackServer) -> None:
    name, first, second = "pat@example.com", "Pat-first-pass-1", "Pat-second-pass-2"
    assert (
        server.api("POST", "/users/register", json={"username": name, "password": first})
    ).status_code == 200
    assert server.api("POST", f"/users/{name}/activate").status_code == 200
    with WebSession(server.dashboard) as pat:
        pat.login(name, first)

        def change(old: str, new: str, again: str) -> list[str]:
            fields = {"old_password": old, "new_password": new, "new_password2": again}
            return messages(
                pat.submit("/dashboard/profile", "/dashboard/profile/password", fields).text
            )

        assert change(first, second, second + "x") == [
            "The two new passwords differ; nothing changed."
        ]
        assert change(first, "12345678", "12345678") == [
            "The password is all digits: mix in letters or other characters; nothing changed."
        ]
        assert change("wrong-old-pass", second, second) == [
            "The old password is not correct; nothing changed."
        ]
        assert change(first, second, second) == ["Your password is changed."]
    with WebSession(server.dashboard) as again:
        again.login(name, second)


# --- jobs -------------------------------------------------------------------------------------


def job(
    name: str, version: str, status: str = "running", updated: float = 0, **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "status": status,
        "update_time": updated,
        "manifest": {"name": name, "owner_email": f"{name}@example.com"},
        "deployed_by": extra.pop("deployed_by", "someone@example.com"),
        "job_type_version": "python3:1.0.0",
        **extra,
    }


def test_rights_follow_the_viewers_grants() -> None:
    viewer = Viewer(username="u@example.com", token="rt_x", is_staff=False)
    grants = [
        {
            "subject_kind": "user",
            "subject_name": "u@example.com",
            "scope": "deploy_job",
            "job_family": "alpha",
        },
        {
            "subject_kind": "user",
            "subject_name": "u@example.com",
            "scope": "delete_job",
            "job_family": "alpha",
            "job_version": "1.0.0",
        },
    ]
    rights = Rights(viewer, grants)
    assert rights.may(Scope.DEPLOY_JOB, job("alpha", "2.0.0"))
    assert not rights.may(Scope.DEPLOY_JOB, job("beta", "1.0.0"))
    assert rights.may(Scope.DELETE_JOB, job("alpha", "1.0.0"))
    assert not rights.may(Scope.DELETE_JOB, job("alpha", "2.0.0"))
    staff = Rights(Viewer("a", "rt_y", is_staff=True), [])
    assert staff.may(Scope.DELETE_JOB, job("beta", "1.0.0"))


def test_times_read_naturally() -> None:
    now = 1_000_000.0
    assert ago(None) == "never"
    assert ago(now - 10, now) == "just now"
    assert ago(now - 300, now) == "5 min ago"
    assert ago(now - 3 * 3600, now) == "3 h ago"
    assert ago(now - 5 * 86400, now) == "5 days ago"


def test_jobs_list_details_and_rights(server: RacetrackServer, visitor: WebSession) -> None:
    settings = Settings(home=server.home, database_url=server.database_url)
    manifest = "name: {0}\nowner_email: owner@example.com\njobtype: python3:latest\n"
    add_jobs(settings, ("listed", "1.2.0"), manifest_yaml=manifest.format("listed"))
    add_jobs(settings, ("listed", "1.10.0"), manifest_yaml=manifest.format("listed"))
    add_jobs(settings, ("secret", "0.1.0"), manifest_yaml=manifest.format("secret"))
    grant = {
        "subject_kind": "user",
        "subject_name": USER,
        "scope": "read_job",
        "job_family": "listed",
    }
    # New users may read every job; this one may read only the family "listed".
    for row in server.api("GET", "/grants").json():
        if row["subject_name"] == USER and row["scope"] == "read_job":
            assert server.api("DELETE", f"/grants/{row['id']}").status_code == 200
    assert server.api("POST", "/grants", json=grant).status_code == 200

    visitor.login(USER, USER_PASSWORD)
    page = visitor.get("/dashboard/jobs").text
    assert page.index("listed 1.10.0") < page.index("listed 1.2.0")
    assert "secret" not in page
    assert "owner@example.com" in page
    detail = visitor.get("/dashboard/jobs/listed/1.10.0")
    assert detail.status_code == 200
    assert "owner_email: owner@example.com" in detail.text
    # Reading is not deploying or deleting: neither button is offered.
    assert "Redeploy" not in detail.text
    assert ">Delete<" not in detail.text
    assert visitor.get("/dashboard/jobs/secret/0.1.0").status_code == 403
    assert visitor.get("/dashboard/jobs/listed/9.9.9").status_code == 404
    refused = visitor.submit(
        "/dashboard/jobs/listed/1.10.0", "/dashboard/jobs/listed/1.10.0/delete"
    )
    assert refused.status_code == 403

    with WebSession(server.dashboard) as admin:
        admin.login("admin", server.admin_password)
        staff_view = admin.get("/dashboard/jobs/listed/1.10.0").text
        assert "Redeploy" in staff_view
        assert ">Delete<" in staff_view or "Delete</a>" in staff_view
        filtered = admin.get("/dashboard/jobs", params={"q": "secret", "sort": "name"}).text
        assert "secret 0.1.0" in filtered
        assert "listed 1.10.0" not in filtered
        for html in (page, detail.text, staff_view, filtered):
            assert forms_without_csrf(html) == []
            assert unlabelled_controls(html) == []


def test_unknown_pages_are_html_404s(visitor: WebSession) -> None:
    answer = visitor.get("/dashboard/no/such/page")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "There is no page at /dashboard/no/such/page" in answer.text


# --- Lifecycle down ---------------------------------------------------------------------------


def test_pages_say_so_when_lifecycle_does_not_answer(tmp_path: Path) -> None:
    closed = free_port()
    app = create_app(Settings(home=tmp_path, lifecycle_port=closed))

    async def visit() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            client.cookies.set("X-Racetrack-Auth", "rt_whatever")
            return await client.get("/dashboard/jobs"), await client.get("/dashboard/login")

    # In a thread of its own: Playwright's sync API keeps an event loop in the main thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        jobs, login = pool.submit(asyncio.run, visit()).result()
    assert jobs.status_code == 503
    assert f"127.0.0.1:{closed}" in jobs.text
    assert "does not answer" in jobs.text
    assert login.status_code == 503


def test_failed_logins_count_against_the_browsers_address(server: RacetrackServer) -> None:
    """The Dashboard tells Lifecycle whose address a failed login comes from, so that one
    browser's failures do not lock everybody out of the Dashboard's logins."""
    settings = Settings.load(
        {"home": server.home, "lifecycle_port": server.ports["lifecycle"]}, environ={}
    )
    assert settings.internal_token
    app = create_app(settings)

    async def fail_from(address: str, attempts: int) -> list[int]:
        transport = httpx.ASGITransport(app=app, client=(address, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as browser:
            page = await browser.get("/dashboard/login")
            token = CSRF_PATTERN.search(page.text)
            assert token
            statuses = []
            for number in range(attempts):
                answer = await browser.post(
                    "/dashboard/login",
                    data={
                        "csrf_token": token.group(1),
                        "username": f"nobody{number}@example.com",
                        "password": "not-the-password",
                    },
                )
                statuses.append(answer.status_code)
            return statuses

    async def visits() -> tuple[list[int], list[int]]:
        try:
            return await fail_from("203.0.113.9", 21), await fail_from("203.0.113.10", 1)
        finally:
            await app.state.dashboard.api.close()  # ASGITransport runs no lifespan

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        held, other = pool.submit(asyncio.run, visits()).result()
    assert held == [401] * 20 + [429]
    assert other == [401]
    # Logging in from this machine's own address still works.
    with WebSession(server.dashboard) as visitor:
        visitor.login(USER, USER_PASSWORD)


#: Dashboard routes that anyone may use: the ones that let a person in, and the probes.
OPEN_ROUTES = {
    ("GET", "/"),
    ("GET", "/dashboard"),
    ("GET", "/dashboard/"),
    ("GET", "/live"),
    ("GET", "/health"),
    ("GET", "/dashboard/live"),
    ("GET", "/dashboard/login"),
    ("POST", "/dashboard/login"),
    ("POST", "/dashboard/logout"),
    ("GET", "/dashboard/register"),
    ("POST", "/dashboard/register"),
    ("GET", "/dashboard/waiting"),
}


def every_route() -> list[tuple[str, str]]:
    found = []
    for route in dashboard_routes():
        if isinstance(route, Route):
            path = route.path.replace("{", "").replace("}", "")  # {name} -> name
            found += [(method, path) for method in sorted(route.methods or ()) if method != "HEAD"]
    return found


@pytest.mark.parametrize(("method", "path"), every_route())
def test_every_page_but_the_open_ones_needs_a_session(
    visitor: WebSession, method: str, path: str
) -> None:
    if (method, path) in OPEN_ROUTES:
        return
    if method == "GET":
        answer = visitor.get(path, follow_redirects=False)
    else:
        token = visitor.csrf("/dashboard/login")
        answer = visitor.client.post(path, data={"csrf_token": token}, follow_redirects=False)
    assert answer.status_code == 303, answer.text[:300]
    assert answer.headers["location"].startswith("/dashboard/login?next=")


def test_the_open_routes_are_routes() -> None:
    assert not OPEN_ROUTES - set(every_route())


def test_the_jobs_list_comes_in_pages_of_families(
    server: RacetrackServer, admin: WebSession
) -> None:
    settings = Settings(home=server.home, database_url=server.database_url)
    add_jobs(settings, *[(f"paged-{n:03d}", "1.0.0") for n in range(FAMILIES_PER_PAGE + 7)])
    add_jobs(settings, ("paged-000", "1.1.0"))

    def families(page: str) -> tuple[list[str], str]:
        html = admin.get(
            "/dashboard/jobs", params={"q": "paged-", "sort": "name", "page": page}
        ).text
        return re.findall(r'data-family="(paged-\d+)"', html), html

    first, html = families("1")
    assert first == [f"paged-{n:03d}" for n in range(FAMILIES_PER_PAGE)]
    assert f"{FAMILIES_PER_PAGE + 8} of " in html
    assert "page 1 of 2" in html
    assert 'rel="next"' in html
    assert 'rel="prev"' not in html
    second, html = families("2")
    assert second == [f"paged-{n:03d}" for n in range(FAMILIES_PER_PAGE, FAMILIES_PER_PAGE + 7)]
    assert 'rel="prev"' in html
    # The filter and the order travel with the page links.
    assert "q=paged-&amp;status=&amp;sort=name&amp;page=1" in html
    assert families("99")[0] == second
    assert families("nonsense")[0] == first


def test_the_grants_come_in_pages(server: RacetrackServer, admin: WebSession) -> None:
    settings = Settings(home=server.home, database_url=server.database_url)
    add_jobs(settings, *[(f"grantee-{n:03d}", "1.0.0") for n in range(GRANTS_PER_PAGE + 3)])
    for n in range(GRANTS_PER_PAGE + 3):
        grant = {"subject_kind": "user", "subject_name": USER, "scope": "call_job"}
        answer = server.api("POST", "/grants", json={**grant, "job_family": f"grantee-{n:03d}"})
        assert answer.status_code == 200, answer.text

    def covered(page: str) -> tuple[list[str], str]:
        html = admin.get("/dashboard/admin/grants", params={"subject": "sam@", "page": page}).text
        return sorted(set(re.findall(r"grantee-\d+", html))), html

    first, html = covered("1")
    assert len(first) == GRANTS_PER_PAGE - 3  # the user's three grants on every job come first
    assert "page 1 of 2" in html
    second, html = covered("2")
    assert len(second) == GRANTS_PER_PAGE + 3 - len(first)
    assert not set(first) & set(second)
    assert "subject=sam%40&amp;page=1" in html
