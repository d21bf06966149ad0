"""A stand-in Lifecycle for the client's unit tests: canned answers over real HTTP on 127.0.0.1.

The client's own error handling (a 401 with a token, a 404 from something that is not
Lifecycle, a 500, a deployment that fails) is tested against it; the real server is tested in
test_workflow.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, Any] | Callable[[], tuple[int, Any]]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeLifecycle:
    """Answers ``(method, path)`` (path without the query) with ``(status, body)``; a str body
    is sent as text/html, anything else as JSON."""

    url: str = ""
    answers: dict[tuple[str, str], Answer] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def answer(self, method: str, path: str, answer: Answer) -> None:
        self.answers[(method, path)] = answer

    def requests_to(self, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path.split("?")[0] == path]


@contextmanager
def fake_lifecycle() -> Iterator[FakeLifecycle]:
    fake = FakeLifecycle()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def handle_any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            fake.seen.append(Seen(self.command, self.path, dict(self.headers), body))
            answer = fake.answers.get((self.command, self.path.split("?")[0]))
            status: int
            content: Any
            if answer is None:
                status, content = 404, {"error": f"no route {self.path}", "type": "NotFound"}
            else:
                status, content = answer() if callable(answer) else answer
            if isinstance(content, str):
                data, kind = content.encode(), "text/html"
            else:
                data, kind = json.dumps(content).encode(), "application/json"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = handle_any

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/lifecycle"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
