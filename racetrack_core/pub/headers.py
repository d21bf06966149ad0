"""Which headers cross Pub, in both directions, and where the caller's token is found.

Towards the job, Pub drops hop-by-hop headers, ``Host`` (the job gets its own), every token
header and the token cookie (a job never sees a user's token), and any ``X-Caller-Name`` or
``X-Forwarded-*`` the caller made up; it adds ``X-Forwarded-For/Host/Proto``, the tracing id and
``X-Caller-Name``. Back towards the caller it drops hop-by-hop headers and the job server's
``Server`` and ``Date`` (Pub's server sends its own), and makes a ``Location`` that points at the
job's internal address relative. Every job answer but the job's Swagger page gets a sandboxing
``Content-Security-Policy`` (:func:`job_answer_headers`).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: Token headers, in the order they are looked at; the legacy names come after the current one.
TOKEN_HEADERS = (b"x-racetrack-auth", b"x-racetrack-esc-auth", b"x-racetrack-user-auth")
TOKEN_COOKIE = "X-Racetrack-Auth"  # noqa: S105 (a cookie name, not a secret)

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
_SET_BY_PUB = frozenset(
    {b"host", b"x-caller-name", b"x-forwarded-for", b"x-forwarded-host", b"x-forwarded-proto"}
)
_RESPONSE_DROPPED = HOP_BY_HOP | {b"server", b"date"}
_CONNECTION_OPTIONS = frozenset({"close", "keep-alive", "upgrade"})
_MAX_TRACING_ID = 128

#: Every job is served from Pub's origin, where the browser keeps the visitor's token cookie. A
#: sandbox without ``allow-same-origin`` gives a job's page an opaque origin: its requests to
#: Pub are cross-site, so the ``SameSite`` cookie is not sent, and it cannot read Pub's answers.
JOB_PAGE_SANDBOX = (
    b"content-security-policy",
    b"sandbox allow-scripts allow-forms allow-popups allow-downloads",
)
#: The job's own Swagger page (python3 and golang wrappers): its "Try it out" calls the job
#: from the page with the visitor's cookie, so it keeps Pub's origin. Its assets are not
#: documents, so a policy on them would change nothing.
SWAGGER_PAGES = frozenset({"/docs", "/docs/"})

RawHeaders = list[tuple[bytes, bytes]]


@dataclass(slots=True)
class IncomingCall:
    """What Pub takes from a call's headers."""

    token: str | None
    tracing_id: str
    #: Headers to pass on to the job (Pub's own additions still to come).
    forwarded: list[tuple[str, str]]
    forwarded_for: str
    forwarded_host: str
    wants_websocket: bool


def dropped_request_headers(tracing_header: bytes) -> frozenset[bytes]:
    """The request headers that never reach a job as the caller sent them."""
    return HOP_BY_HOP | _SET_BY_PUB | {tracing_header, *TOKEN_HEADERS}


def read_call(
    headers: Iterable[tuple[bytes, bytes]],
    client: tuple[str, int] | None,
    tracing_header: bytes,
    dropped: frozenset[bytes],
) -> IncomingCall:
    """Sort a call's headers (names lower-case) in one pass: the token, the tracing id, and
    what goes on; ``client`` is the caller's address.

    ``tracing_header`` is lower-case; ``dropped`` comes from :func:`dropped_request_headers`.
    """
    tokens: dict[bytes, bytes] = {}
    forwarded: list[tuple[str, str]] = []
    tracing = host = forwarded_for = forwarded_host = b""
    connection = upgrade = b""
    cookie_token: str | None = None
    for name, value in headers:
        if name in dropped:
            if name in TOKEN_HEADERS:
                tokens.setdefault(name, value)
            elif name == tracing_header:
                tracing = value
            elif name == b"host":
                host = value
            elif name == b"x-forwarded-for":
                forwarded_for = value
            elif name == b"x-forwarded-host":
                forwarded_host = value
            elif name == b"connection":
                connection = value
            elif name == b"upgrade":
                upgrade = value
        elif name == b"cookie":
            kept, found = _strip_token_cookie(value.decode("latin-1"))
            cookie_token = cookie_token or found
            if kept:
                forwarded.append(("cookie", kept))
        else:
            forwarded.append((name.decode("latin-1"), value.decode("latin-1")))
    if connection:
        # Headers that the Connection header names are hop-by-hop too (RFC 9110, 7.6.1).
        listed = {option.strip().lower() for option in connection.decode("latin-1").split(",")}
        listed -= _CONNECTION_OPTIONS
        if listed:
            forwarded = [(name, value) for name, value in forwarded if name not in listed]
    token = next((tokens[name] for name in TOKEN_HEADERS if name in tokens), None)
    tracing_id = tracing.decode("latin-1") if 0 < len(tracing) <= _MAX_TRACING_ID else ""
    peer = client[0] if client else ""
    for_chain = forwarded_for.decode("latin-1")
    return IncomingCall(
        token=token.decode("latin-1") if token else cookie_token,
        # Unique, not secret: Python's PRNG spares a getrandom() system call per request.
        tracing_id=tracing_id or f"{random.getrandbits(128):032x}",
        forwarded=forwarded,
        forwarded_for=f"{for_chain}, {peer}" if for_chain else peer,
        forwarded_host=(forwarded_host or host).decode("latin-1"),
        wants_websocket=upgrade.lower() == b"websocket",
    )


@dataclass(frozen=True, slots=True)
class CallReader:
    """How one of Pub's ASGI handlers reads its callers: the tracing header as configured
    (``header``) and as the lower-case bytes the server hands over (``key``), and the request
    headers that never reach a job (``dropped``)."""

    header: str
    key: bytes
    dropped: frozenset[bytes]

    @classmethod
    def of(cls, tracing_header: str, also_dropped: Iterable[bytes] = ()) -> CallReader:
        key = tracing_header.lower().encode("latin-1")
        return cls(tracing_header, key, dropped_request_headers(key) | frozenset(also_dropped))

    def read(self, scope: Mapping[str, Any]) -> tuple[IncomingCall, list[tuple[bytes, bytes]]]:
        """The call an ASGI ``scope`` holds, and the tracing header every answer to it carries."""
        call = read_call(scope["headers"], scope.get("client"), self.key, self.dropped)
        return call, self.tracing(call.tracing_id)

    def tracing(self, tracing_id: str) -> list[tuple[bytes, bytes]]:
        """The tracing header of an answer."""
        return [(self.key, tracing_id.encode("latin-1"))]


def job_request_headers(
    call: IncomingCall, caller: str, proto: str, tracing_header: str
) -> list[tuple[str, str]]:
    """The headers a job gets: the caller's that go on, then Pub's (``proto``: http or https)."""
    headers = call.forwarded
    headers.append(("x-forwarded-for", call.forwarded_for))
    if call.forwarded_host:
        headers.append(("x-forwarded-host", call.forwarded_host))
    headers.append(("x-forwarded-proto", proto))
    headers.append((tracing_header, call.tracing_id))
    headers.append(("x-caller-name", caller))
    return headers


def _strip_token_cookie(header: str) -> tuple[str, str | None]:
    """The Cookie header without the token cookie, and that cookie's value if present."""
    if TOKEN_COOKIE not in header:
        return header, None
    kept: list[str] = []
    token: str | None = None
    for pair in header.split(";"):
        name, _, value = pair.strip().partition("=")
        if name == TOKEN_COOKIE:
            token = token or value.strip().strip('"') or None
        elif name:
            kept.append(pair.strip())
    return "; ".join(kept), token


#: Where a call arrived through the original Racetrack's oldest route, ``/pub/fatman/...``.
LEGACY_PREFIX = "/fatman/"


def legacy_route_headers(path: str) -> list[tuple[bytes, bytes]]:
    """What every answer to ``/pub/fatman/{path}`` carries: the route is deprecated
    (``Deprecation``, RFC 9745's header) and ``/pub/job/{path}`` replaces it (``Link``)."""
    successor = "/pub/job/" + path.partition("?")[0]
    return [
        (b"deprecation", b"true"),
        (b"link", f'<{successor}>; rel="successor-version"'.encode("latin-1")),
    ]


def job_answer_headers(tail: str) -> list[tuple[bytes, bytes]]:
    """What Pub adds to a job's answer for the path ``tail`` within the job (still encoded)."""
    return [] if tail in SWAGGER_PAGES else [JOB_PAGE_SANDBOX]


def response_headers(raw: tuple[tuple[bytes, bytes], ...], base_url: str) -> RawHeaders:
    """The job's answer headers as Pub passes them on (names lower-cased, as ASGI wants)."""
    headers: RawHeaders = []
    for name, value in raw:
        lowered = name.lower()
        if lowered in _RESPONSE_DROPPED:
            continue
        if lowered == b"location":
            value = _relative_location(value, base_url)
        headers.append((lowered, value))
    return headers


def _relative_location(value: bytes, base_url: str) -> bytes:
    base = base_url.encode("latin-1")
    if value.startswith(base) and value[len(base) : len(base) + 1] in (b"/", b""):
        return value[len(base) :] or b"/"
    return value
