"""The Dashboard's client of the Lifecycle API.

The Dashboard holds no rights of its own: every call carries the signed-in person's token, so
Lifecycle decides what each person may see and do, exactly as it does for the CLI.
"""

from __future__ import annotations

from typing import Any

import httpx

from racetrack_core.wire import AUTH_HEADER, CLIENT_ADDRESS_HEADER, SERVICE_TOKEN_HEADER

#: Seconds an idle connection to Lifecycle is kept (uvicorn closes its side after 5).
KEEPALIVE_SECONDS = 2.0


class LifecycleError(Exception):
    """Lifecycle refused a call: its status, its sentence and its error type."""

    def __init__(self, status: int, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


class Unreachable(LifecycleError):
    """Lifecycle did not answer (it is down, or too slow)."""

    def __init__(self, base_url: str) -> None:
        super().__init__(503, f"the Lifecycle API at {base_url} does not answer; try again soon")


class LifecycleClient:
    """Calls ``/api/v1`` on Lifecycle with a person's token; one connection pool per app."""

    def __init__(
        self,
        base_url: str,
        transport: httpx.AsyncBaseTransport | None = None,
        service_token: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._transport = transport
        self._service_token = service_token
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                transport=self._transport,
                timeout=httpx.Timeout(30.0, connect=5.0),
                # Idle connections are dropped before uvicorn's own 5 s keep-alive ends, so
                # that a request seldom meets a connection the server is closing.
                limits=httpx.Limits(keepalive_expiry=KEEPALIVE_SECONDS),
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def call(
        self,
        method: str,
        path: str,
        token: str | None,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        content: bytes | None = None,
        timeout: float | None = None,
        client_address: str | None = None,
    ) -> Any:
        """The JSON answer of ``method path``; LifecycleError when Lifecycle refuses it.

        ``client_address`` (for logins and password changes) tells Lifecycle whose address a
        failed attempt counts against, vouched for by the internal service token.
        """
        headers = {AUTH_HEADER: token} if token else {}
        if client_address and self._service_token:
            headers[CLIENT_ADDRESS_HEADER] = client_address
            headers[SERVICE_TOKEN_HEADER] = self._service_token
        if content is not None:
            headers["Content-Type"] = "application/octet-stream"
        for attempt in (1, 2):
            try:
                answer = await self._http().request(
                    method,
                    f"/api/v1{path}",
                    headers=headers,
                    json=json,
                    params=params,
                    content=content,
                    timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
                )
                break
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                # A kept-alive connection the server closed as the request went out: a GET
                # is asked again, once, on a new connection.
                if method != "GET" or attempt == 2:
                    raise Unreachable(self.base_url) from None
            except httpx.HTTPError:
                raise Unreachable(self.base_url) from None
        if answer.status_code >= 400:
            raise _refusal(answer)
        return answer.json() if answer.content else None

    def stream(self, path: str, token: str, params: dict[str, str]) -> Any:
        """An open streaming request (an async context manager) for a text stream."""
        return self._http().stream(
            "GET",
            f"/api/v1{path}",
            headers={AUTH_HEADER: token},
            params=params,
            timeout=httpx.Timeout(None, connect=5.0),
        )


def _refusal(answer: httpx.Response) -> LifecycleError:
    try:
        body = answer.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return LifecycleError(answer.status_code, body["error"], str(body.get("type", "")))
    if answer.status_code >= 500:
        return LifecycleError(
            answer.status_code, "the Lifecycle API failed on this request; see its log"
        )
    return LifecycleError(answer.status_code, f"the Lifecycle API answered {answer.status_code}")
