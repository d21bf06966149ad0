"""A scripted browser without JavaScript for Dashboard tests: it keeps cookies, reads each
page's CSRF token and submits forms the way a browser would."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import httpx

CSRF_PATTERN = re.compile(r'name="csrf_token" value="([^"]+)"')


class WebSession:
    """One visitor of the Dashboard at ``base_url`` (``http://127.0.0.1:<port>``)."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(base_url=base_url, follow_redirects=True, timeout=30)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> WebSession:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def csrf(self, page: str) -> str:
        """The CSRF token of the forms on ``page`` (which sets the CSRF cookie if needed)."""
        answer = self.get(page)
        found = CSRF_PATTERN.search(answer.text)
        assert found, f"no CSRF token on {page} ({answer.status_code})"
        return found.group(1)

    def submit(
        self,
        page: str,
        action: str,
        data: dict[str, str] | None = None,
        files: dict[str, Any] | None = None,
        follow: bool = True,
    ) -> httpx.Response:
        """Post a form of ``page`` to ``action`` with the page's CSRF token."""
        fields = {"csrf_token": self.csrf(page), **(data or {})}
        return self.client.post(action, data=fields, files=files, follow_redirects=follow)

    def login(self, username: str, password: str) -> httpx.Response:
        answer = self.submit(
            "/dashboard/login",
            "/dashboard/login",
            {"username": username, "password": password},
        )
        assert answer.url.path != "/dashboard/login", messages(answer.text)
        return answer


class _Messages(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "p" and "message" in classes:
            self._inside = True
            self.found.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self._inside = False

    def handle_data(self, data: str) -> None:
        if self._inside:
            self.found[-1] += data


def messages(html: str) -> list[str]:
    """The one-time messages a page shows (notices and errors)."""
    parser = _Messages()
    parser.feed(html)
    return [text.strip() for text in parser.found]
