"""A job with its own web page, custom metrics and the caller's request, as the original
wrapper documents them; it needs no requirements (the page is a plain WSGI app)."""

from __future__ import annotations

import html
import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

logger = logging.getLogger(__name__)


class GuestBook:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.greeted: dict[str, int] = {}

    def perform(self, name: str) -> str:
        """Greet someone and remember how often they were greeted."""
        tracing_id = self.request_context.get().headers.get("X-Request-Tracing-Id")  # type: ignore[attr-defined]
        logger.info("greeting %s", name)  # the log line carries the tracing id by itself
        with self.lock:
            self.greeted[name] = self.greeted.get(name, 0) + 1
        return f"Hello, {name}! (request {tracing_id or 'without a tracing id'})"

    def docs_input_example(self) -> dict[str, Any]:
        return {"name": "Ada"}

    def metrics(self) -> list[dict[str, Any]]:
        with self.lock:
            greeted = dict(self.greeted)
        return [
            {"name": "guestbook_guests", "description": "People greeted", "value": len(greeted)},
            *(
                {"name": "guestbook_greetings", "value": count, "labels": {"guest": guest}}
                for guest, count in sorted(greeted.items())
            ),
        ]

    def webview_app(self, base_url: str) -> Callable[..., Iterable[bytes]]:
        """A WSGI app: the page lists the guests; ``/guests`` answers them as JSON."""

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            path = environ["PATH_INFO"]
            with self.lock:
                greeted = dict(self.greeted)
            if path == base_url + "/guests":
                start_response("200 OK", [("Content-Type", "application/json")])
                return [json.dumps(greeted).encode()]
            if path != base_url + "/":
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"no such page"]
            items = "".join(
                f"<li>{html.escape(name)}: {count}</li>" for name, count in sorted(greeted.items())
            )
            page = (
                '<!DOCTYPE html><html><head><link rel="stylesheet" href="static/style.css">'
                f"</head><body><h1>Guest book</h1><ul>{items}</ul></body></html>"
            )
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [page.encode()]

        return app
