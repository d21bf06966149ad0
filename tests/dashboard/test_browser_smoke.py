"""The browser fixtures work here: headless Chromium loads a page, copies to the clipboard, and
the test reads the clipboard back (as the Dashboard's "copy the login command" button needs);
screenshots are numbered and keep every page's HTML."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

from tests.dashboard.conftest import Screenshots

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

COMMAND = "racetrack login --remote http://127.0.0.1:7102 t0k3n"

PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Copy</title></head>
<body>
<main>
<h1>Log in from the command line</h1>
<pre id="command">{COMMAND}</pre>
<button id="copy" type="button">Copy</button>
<p id="status" role="status"></p>
</main>
<script>
document.getElementById("copy").addEventListener("click", async () => {{
  const text = document.getElementById("command").textContent;
  await navigator.clipboard.writeText(text);
  document.getElementById("status").textContent = "Copied";
}});
</script>
</body>
</html>
""".encode()


class _PageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test's output is not the place for an access log."""


@pytest.fixture
def page_url() -> Iterator[str]:
    """http://127.0.0.1 (a secure context: the clipboard API exists only there) serving PAGE."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join()


def test_copy_button_puts_text_on_the_clipboard(
    browser_context: BrowserContext, screenshots: Screenshots, page_url: str
) -> None:
    page = browser_context.new_page()
    page.goto(page_url)

    page.click("#copy")
    page.wait_for_selector("#status:has-text('Copied')")

    assert page.evaluate("navigator.clipboard.readText()") == COMMAND
    path = screenshots.shot(page, "clipboard-copied")
    assert path.name.endswith("-clipboard-copied.png")
    assert path.stat().st_size > 0
    assert "Copied" in screenshots.pages["clipboard-copied"]


def test_shot_pages_are_valid_html(
    browser_context: BrowserContext, screenshots: Screenshots, page_url: str, html_validator: Any
) -> None:
    page = browser_context.new_page()
    page.goto(page_url)
    screenshots.shot(page, "copy-page")

    assert html_validator({"copy-page": screenshots.pages["copy-page"]}) == []


class _StubPage:
    def __init__(self, html: str) -> None:
        self.html = html

    def screenshot(self, path: Path, full_page: bool) -> None:
        path.write_bytes(b"png")

    def content(self) -> str:
        return self.html


def test_shots_are_numbered_and_a_repeated_name_keeps_every_page(tmp_path: Path) -> None:
    shots = Screenshots(tmp_path)

    paths = [
        shots.shot(cast("Page", _StubPage(html)), name)
        for name, html in [("login", "<p>1"), ("jobs", "<p>2"), ("login", "<p>3")]
    ]

    assert [path.name for path in paths] == ["01-login.png", "02-jobs.png", "03-login.png"]
    assert shots.pages == {"login": "<p>1", "jobs": "<p>2", "login-2": "<p>3"}
    with pytest.raises(ValueError, match="use letters"):
        shots.shot(cast("Page", _StubPage("")), "jobs/adder")
