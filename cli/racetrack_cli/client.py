"""HTTP to Lifecycle and Pub, with every failure turned into one sentence that says what to do.

httpx is imported when the first request is made, so that commands which talk to no server
start without it. Lifecycle's errors are ``{"error": "<sentence>", "type": "<kind>"}``; the
sentence is shown as it is, with a hint when the cure is on this side (logging in).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import click

if TYPE_CHECKING:
    import httpx

    from racetrack_cli.config import ClientConfig

AUTH_HEADER = "X-Racetrack-Auth"
USER_AGENT = "racetrack-cli"
LOGIN_HINT = "racetrack login --username <you>"


class ClientError(click.ClickException):
    """A request that failed; its message is one sentence for the user (exit code 1)."""

    exit_code = 1

    def __init__(self, message: str, status: int | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        #: The HTTP status of the answer that failed, if there was one, and the server's words.
        self.status = status
        self.detail = detail


@dataclass
class Lifecycle:
    """A Lifecycle API at a resolved URL, called with the token saved for it (if any)."""

    url: str
    token: str | None = None
    #: The --remote the user gave, repeated in hints so that they work as printed.
    remote_option: str | None = None
    timeout: float = 30.0

    @classmethod
    def connect(cls, remote: str | None, config: ClientConfig | None = None) -> Lifecycle:
        """The Lifecycle of ``--remote`` (or of the current remote) from the configuration."""
        from racetrack_cli.config import ClientConfig

        config = config or ClientConfig.load()
        url = config.resolve(remote)
        return cls(url=url, token=config.token(url), remote_option=remote)

    @property
    def remote_hint(self) -> str:
        return f" --remote {self.remote_option}" if self.remote_option else ""

    def require_token(self) -> str:
        """The saved token, or a ClientError saying how to log in."""
        if not self.token:
            raise ClientError(self.not_logged_in())
        return self.token

    def not_logged_in(self) -> str:
        return f"not logged in to {self.url}: run {LOGIN_HINT}{self.remote_hint}"

    def headers(self, token: str | None = None) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        token = token or self.token
        if token:
            headers[AUTH_HEADER] = token
        return headers

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body: Any = None, **options: Any) -> Any:
        return self.request("POST", path, json_body=body, **options)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        token: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Send a request to ``<url>/api/v1<path>``; return the JSON answer or raise ClientError."""
        httpx = _httpx()
        headers = self.headers(token)
        if content is not None:
            headers["Content-Type"] = "application/octet-stream"
        with self._reaching():
            answer = httpx.request(
                method,
                f"{self.url}/api/v1{path}",
                json=json_body,
                content=content,
                params=params,
                headers=headers,
                timeout=timeout or self.timeout,
                verify=needs_tls(self.url),
            )
        return self.answer_of(answer, token=token)

    @contextmanager
    def stream_lines(self, path: str, params: dict[str, Any]) -> Iterator[Iterator[str]]:
        """The lines of a streamed ``text/plain`` answer, as they come."""
        httpx = _httpx()
        timeout = httpx.Timeout(self.timeout, read=None)
        with (
            self._reaching(),
            httpx.stream(
                "GET",
                f"{self.url}/api/v1{path}",
                params=params,
                headers=self.headers(),
                timeout=timeout,
                verify=needs_tls(self.url),
            ) as answer,
        ):
            if answer.status_code >= 400:
                answer.read()
                self.answer_of(answer)
            yield answer.iter_lines()

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        httpx = _httpx()
        try:
            yield
        except httpx.ConnectError:
            raise ClientError(
                f"cannot reach Lifecycle at {self.url}: is racetrack up running?"
            ) from None
        except httpx.TimeoutException:
            raise ClientError(
                f"Lifecycle at {self.url} did not answer in time; try again, or check the server"
            ) from None
        except httpx.HTTPError as exc:
            raise ClientError(f"talking to Lifecycle at {self.url} failed: {exc}") from None

    def answer_of(self, answer: httpx.Response, token: str | None = None) -> Any:
        """The JSON of a successful answer; a ClientError worded for the user otherwise."""
        if answer.status_code < 400:
            return _json_or_text(answer)
        message = error_message(answer)
        if answer.status_code == 401:
            if not (token or self.token):
                raise ClientError(self.not_logged_in(), status=401, detail=message)
            raise ClientError(
                f"{message or 'unauthenticated'} ({self.url}): run {LOGIN_HINT}{self.remote_hint}",
                status=401,
                detail=message,
            )
        if message is None:
            if answer.status_code == 404:
                raise ClientError(
                    f"{self.url} does not look like a Racetrack Lifecycle API "
                    f"({answer.request.method} {answer.request.url.path} answered 404): "
                    "check the remote with racetrack get remote",
                    status=404,
                )
            raise ClientError(
                f"Lifecycle at {self.url} answered {answer.status_code} to "
                f"{answer.request.method} {answer.request.url.path}",
                status=answer.status_code,
            )
        raise ClientError(message, status=answer.status_code, detail=message)


remote_option = click.option(
    "--remote",
    metavar="URL|ALIAS",
    help="The Lifecycle to talk to, a URL or an alias [default: the current remote].",
)


def call_job(url: str, payload: Any, token: str | None, timeout: float = 300) -> tuple[Any, bool]:
    """POST ``payload`` as JSON to a job endpoint through Pub; return its answer, and whether
    that is JSON (else it is the text)."""
    httpx = _httpx()
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if token:
        headers[AUTH_HEADER] = token
    try:
        answer = httpx.post(
            url, json=payload, headers=headers, timeout=timeout, verify=needs_tls(url)
        )
    except httpx.ConnectError:
        raise ClientError(f"cannot reach Pub at {url}: is racetrack up running?") from None
    except httpx.TimeoutException:
        raise ClientError(f"the job did not answer in {timeout:g} s ({url})") from None
    except httpx.HTTPError as exc:
        raise ClientError(f"calling {url} failed: {exc}") from None
    if answer.status_code >= 400:
        message = error_message(answer) or answer.text.strip()[:200]
        raise ClientError(f"{url} answered {answer.status_code}: {message}")
    if "json" in answer.headers.get("content-type", ""):
        try:
            return answer.json(), True
        except ValueError:
            pass
    return answer.text, False


def error_message(answer: httpx.Response) -> str | None:
    """The sentence of an ``{"error": ...}`` answer, on one line, or None."""
    try:
        body = answer.json()
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return " ".join(body["error"].split())
    return None


def _json_or_text(answer: httpx.Response) -> Any:
    if "json" in answer.headers.get("content-type", ""):
        try:
            return answer.json()
        except json.JSONDecodeError:
            pass
    return answer.text


def needs_tls(url: str) -> bool:
    """Whether a URL is https. For plain http the TLS context (which costs a quarter of a
    second to build, reading every CA certificate) is not made at all; https is verified."""
    return url.startswith("https://")


def _httpx() -> Any:
    import httpx

    return httpx


def segment(value: str) -> str:
    """A value quoted for one segment of an API path (an e-mail address keeps its @)."""
    return quote(value, safe="@")
