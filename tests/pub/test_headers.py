"""Which headers cross Pub, without any server."""

from __future__ import annotations

from racetrack_core.pub.headers import (
    IncomingCall,
    dropped_request_headers,
    read_call,
    response_headers,
)

TRACING = b"x-request-tracing-id"


def read(*headers: tuple[str, str]) -> IncomingCall:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers]
    return read_call(raw, ("127.0.0.9", 5000), TRACING, dropped_request_headers(TRACING))


def test_the_header_token_wins_over_legacy_names_and_cookie() -> None:
    call = read(
        ("Cookie", "X-Racetrack-Auth=from-cookie"),
        ("X-Racetrack-User-Auth", "legacy"),
        ("X-Racetrack-Auth", "current"),
    )

    assert call.token == "current"
    assert call.forwarded == []


def test_the_cookie_token_is_used_and_stripped() -> None:
    call = read(("Cookie", "a=1; X-Racetrack-Auth=tok; b=2"))

    assert call.token == "tok"
    assert call.forwarded == [("cookie", "a=1; b=2")]


def test_hop_by_hop_and_connection_listed_headers_are_dropped() -> None:
    call = read(
        ("Connection", "keep-alive, X-Secret-Hop"),
        ("X-Secret-Hop", "1"),
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("Host", "pub.example"),
        ("Accept", "application/json"),
    )

    assert call.forwarded == [("accept", "application/json")]
    assert call.forwarded_host == "pub.example"
    assert call.token is None


def test_a_too_long_tracing_id_is_replaced() -> None:
    assert read(("X-Request-Tracing-Id", "x" * 500)).tracing_id != "x" * 500
    assert read(("X-Request-Tracing-Id", "abc")).tracing_id == "abc"


def test_response_headers_drop_hop_by_hop_and_relativise_location() -> None:
    raw = (
        (b"Content-Type", b"text/plain"),
        (b"Transfer-Encoding", b"chunked"),
        (b"Server", b"uvicorn"),
        (b"Location", b"http://10.0.0.5:7000/pub/job/a/1.0.0/x"),
        (b"Set-Cookie", b"s=1"),
        (b"Set-Cookie", b"t=2"),
    )

    assert response_headers(raw, "http://10.0.0.5:7000") == [
        (b"content-type", b"text/plain"),
        (b"location", b"/pub/job/a/1.0.0/x"),
        (b"set-cookie", b"s=1"),
        (b"set-cookie", b"t=2"),
    ]
    assert response_headers(((b"Location", b"http://10.0.0.5:70001/"),), "http://10.0.0.5:7000")
