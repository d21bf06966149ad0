"""Fixtures for the Dashboard's browser tests: Debian's Chromium driven by Playwright.

Playwright drives the system browser (``/usr/bin/chromium``, Debian package ``chromium``); we
never run ``playwright install``. Without Chromium, Playwright or Java the tests that need them
skip, and under CI=true the suite-wide rule in ``tests/conftest.py`` turns those skips into a
failed run. The sync Playwright API cannot run inside a running asyncio loop: keep these tests
plain sync functions.

The clipboard API exists only in a secure context: a page served from http://127.0.0.1 or
localhost has it, ``about:blank`` and ``page.set_content`` do not. Headless Chromium keeps one
clipboard for the whole browser, shared by every context: a test writes before it reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from racetrack_core.testing.server import QUICK_ENV, RacetrackServer
from tests.dashboard.htmlcheck import ValidatorUnavailable, validate_html, vnu_command

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # tests run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    # No traffic beyond 127.0.0.1: no update, sync, field-trial or QUIC probes.
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
DEFAULT_TIMEOUT_MS = 15_000
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Headless Debian Chromium, one per test module.

    Not one per session: Playwright's sync API keeps an asyncio loop running in the main thread
    while it is started, and the tests of other modules that run their own loops would fail.
    """
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is missing (install the tests dependency group)")
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    finally:
        playwright.stop()


@pytest.fixture
def browser_context(chromium: Browser) -> Iterator[BrowserContext]:
    """A fresh context (no cookies, no storage) whose pages may read and write the clipboard."""
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    yield context
    context.close()


class Screenshots:
    """Numbered full-page screenshots, and the HTML of each page shot, for validation later."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.pages: dict[str, str] = {}
        self._count = 0

    def shot(self, page: Page, name: str) -> Path:
        """Save ``NN-name.png`` and remember the page's HTML under ``name``.

        A name used before in the session (two tests shooting "login") is kept as ``name-2``,
        ``name-3``, ..., so that no page goes unvalidated.
        """
        if not re.fullmatch(r"[\w.-]+", name):
            raise ValueError(f"screenshot name {name!r}: use letters, digits, '.', '_', '-'")
        self._count += 1
        path = self.folder / f"{self._count:02d}-{name}.png"
        page.screenshot(path=path, full_page=True)
        key, repeat = name, 1
        while key in self.pages:
            repeat += 1
            key = f"{name}-{repeat}"
        self.pages[key] = page.content()
        return path


@pytest.fixture(scope="session")
def screenshots() -> Screenshots:
    """Screenshots of this session in ``test-output/screenshots/`` (older ones are removed)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    return Screenshots(SCREENSHOTS)


@pytest.fixture(scope="session")
def html_validator() -> Callable[[dict[str, str]], list[str]]:
    """``validate_html``, or a skip when Java or vnu.jar is missing."""
    try:
        vnu_command()
    except ValidatorUnavailable as missing:
        pytest.skip(str(missing))
    return validate_html


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RacetrackServer]:
    """A ``racetrack up`` shared by a module's tests (the admin's password: ``admin_password``)."""
    home = tmp_path_factory.mktemp("dashboard") / "home"
    with RacetrackServer(home, env=QUICK_ENV) as running:
        yield running
