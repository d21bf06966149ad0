"""Pub's proxy against a real job and a Lifecycle stand-in, all on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.pub.servers import (
    ADMIN_TOKEN,
    GUEST_TOKEN,
    LARGE_CHUNK,
    LARGE_CHUNKS,
    LifecycleStandIn,
    Server,
    admin,
    refused_url,
)

pytestmark = pytest.mark.slow


def echo(response: httpx.Response) -> dict[str, str]:
    """The headers the job saw, from its echo answer."""
    assert response.status_code == 200, response.text
    return dict(response.json()["headers"])


def test_a_call_without_a_token_gets_the_user_guides_401(client: httpx.Client, pub: str) -> None:
    response = client.post(f"{pub}/pub/job/adder/latest/api/v1/perform", json={"numbers": [1]})

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert response.content == (
        b'{"error":"Unauthenticated: no header X-Racetrack-Auth: not logged in"}'
    )


def test_an_unknown_token_gets_401_with_lifecycles_reason(client: httpx.Client, pub: str) -> None:
    response = client.get(f"{pub}/pub/job/adder/latest/echo", headers={"X-Racetrack-Auth": "x"})

    assert response.status_code == 401
    assert response.json() == {"error": "Unauthenticated: invalid auth token"}


@pytest.mark.parametrize(
    "header", ["X-Racetrack-Auth", "X-Racetrack-User-Auth", "X-Racetrack-Esc-Auth"]
)
def test_the_token_header_and_its_legacy_names_are_accepted(
    client: httpx.Client, pub: str, header: str
) -> None:
    response = client.get(f"{pub}/pub/job/adder/latest/echo", headers={header: ADMIN_TOKEN})

    assert response.status_code == 200


def test_the_token_cookie_is_accepted_and_not_forwarded(client: httpx.Client, pub: str) -> None:
    cookie = f"theme=dark; X-Racetrack-Auth={ADMIN_TOKEN}; lang=en"
    response = client.get(f"{pub}/pub/job/adder/latest/echo", headers={"Cookie": cookie})

    assert echo(response)["cookie"] == "theme=dark; lang=en"


def test_403_and_404_pass_through_with_their_layer_named(client: httpx.Client, pub: str) -> None:
    forbidden = client.get(
        f"{pub}/pub/job/adder/latest/echo", headers={"X-Racetrack-Auth": GUEST_TOKEN}
    )
    missing = client.get(f"{pub}/pub/job/nobody/latest/echo", headers=admin())

    assert forbidden.status_code == 403
    assert forbidden.json() == {"error": "Forbidden: User guest may not call job adder"}
    assert missing.status_code == 404
    assert missing.json() == {"error": "Job was not found: no job named nobody in version latest"}


@pytest.mark.parametrize(
    ("asked", "resolved"), [("latest", "1.2.0"), ("1.x", "1.2.0"), ("1.0.0", "1.0.0")]
)
def test_the_job_is_called_at_the_resolved_version(
    client: httpx.Client, pub: str, asked: str, resolved: str
) -> None:
    response = client.get(f"{pub}/pub/job/adder/{asked}/api/v1/perform", headers=admin())

    assert response.json()["path"] == f"/pub/job/adder/{resolved}/api/v1/perform"


def test_routes_answer_at_the_root_too(client: httpx.Client, pub: str) -> None:
    response = client.get(f"{pub}/job/adder/1.0.0/echo", headers=admin())

    assert response.json()["path"] == "/pub/job/adder/1.0.0/echo"


def test_the_jobs_base_path_itself_is_proxied(client: httpx.Client, pub: str) -> None:
    response = client.get(f"{pub}/pub/job/adder/1.0.0", headers=admin())

    assert response.json()["path"] == "/pub/job/adder/1.0.0"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_method_query_body_and_headers_are_forwarded(
    client: httpx.Client, pub: str, method: str
) -> None:
    response = client.request(
        method,
        f"{pub}/pub/job/adder/latest/api/v1/perform?x=1&name=a%20b",
        headers=admin(**{"Content-Type": "text/plain", "X-Custom": "kept"}),
        content=b"the body",
    )

    answer = response.json()
    headers = echo(response)
    assert answer["method"] == method
    assert answer["query"] == "x=1&name=a%20b"
    assert answer["body"] == "the body"
    assert headers["x-custom"] == "kept"
    assert headers["content-type"] == "text/plain"
    assert response.headers["x-job-header"] == "from-job"


def test_a_streamed_request_body_is_forwarded_whole(client: httpx.Client, pub: str) -> None:
    parts = [b"a" * 100_000, b"b" * 100_000, b"c" * 5]

    response = client.post(f"{pub}/pub/job/adder/latest/echo", headers=admin(), content=iter(parts))

    assert response.json()["body"] == b"".join(parts).decode()


def test_the_job_sees_forwarding_headers_and_no_token(client: httpx.Client, pub: str) -> None:
    response = client.get(
        f"{pub}/pub/job/adder/latest/echo",
        headers=admin(
            **{
                "X-Caller-Name": "User forged",
                "X-Racetrack-Esc-Auth": "another-secret",
                "X-Forwarded-For": "10.1.2.3",
            }
        ),
    )

    headers = echo(response)
    assert headers["x-caller-name"] == "User admin"
    assert headers["x-forwarded-for"] == "10.1.2.3, 127.0.0.1"
    assert headers["x-forwarded-host"] == pub.removeprefix("http://")
    assert headers["x-forwarded-proto"] == "http"
    assert not {"x-racetrack-auth", "x-racetrack-esc-auth"} & headers.keys()
    assert ADMIN_TOKEN not in response.text
    assert "another-secret" not in response.text


def test_a_tracing_id_is_generated_and_echoed(client: httpx.Client, pub: str) -> None:
    response = client.get(f"{pub}/pub/job/adder/latest/echo", headers=admin())

    tracing_id = response.headers["x-request-tracing-id"]
    assert len(tracing_id) == 32
    assert echo(response)["x-request-tracing-id"] == tracing_id


def test_a_callers_tracing_id_is_kept(client: httpx.Client, pub: str) -> None:
    headers = admin(**{"X-Request-Tracing-Id": "trace-42"})
    response = client.get(f"{pub}/pub/job/adder/latest/echo", headers=headers)
    refused = client.get(f"{pub}/pub/job/adder/latest/echo", headers={"X-Request-Tracing-Id": "t"})

    assert response.headers["x-request-tracing-id"] == "trace-42"
    assert echo(response)["x-request-tracing-id"] == "trace-42"
    assert refused.headers["x-request-tracing-id"] == "t"


def test_a_large_answer_is_streamed(client: httpx.Client, pub: str) -> None:
    received = bytearray()
    pieces = 0
    with client.stream("GET", f"{pub}/pub/job/adder/latest/large", headers=admin()) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/octet-stream"
        assert "content-length" not in response.headers
        for chunk in response.iter_raw():
            received += chunk
            pieces += 1

    assert received == LARGE_CHUNK * LARGE_CHUNKS
    assert pieces > 1


def test_a_caller_hanging_up_mid_answer_leaves_pub_serving(client: httpx.Client, pub: str) -> None:
    with client.stream("GET", f"{pub}/pub/job/adder/latest/large", headers=admin()) as response:
        next(response.iter_raw())

    assert client.get(f"{pub}/pub/job/adder/latest/echo", headers=admin()).status_code == 200


def test_a_redirect_to_the_jobs_internal_address_is_made_relative(
    client: httpx.Client, pub: str
) -> None:
    response = client.get(f"{pub}/pub/job/adder/latest/redirect", headers=admin())

    assert response.status_code == 302
    assert response.headers["location"] == "/pub/job/adder/1.2.0/echo"


def test_the_jobs_error_status_passes_through(client: httpx.Client, pub: str) -> None:
    response = client.get(f"{pub}/pub/job/adder/latest/status/422", headers=admin())

    assert response.status_code == 422
    assert response.json() == {"status": 422}


def test_permissions_are_cached_per_token(
    client: httpx.Client, pub: str, lifecycle: LifecycleStandIn
) -> None:
    for _ in range(5):
        client.get(f"{pub}/pub/job/adder/latest/echo", headers=admin())
    client.get(f"{pub}/pub/job/adder/latest/echo", headers={"X-Racetrack-Auth": GUEST_TOKEN})

    assert lifecycle.calls == 2
    assert all("admin-token" not in str(h) for h in lifecycle.seen_headers[1:])


def test_concurrent_calls_share_one_permission_check(pub: str, lifecycle: LifecycleStandIn) -> None:
    def call(_: int) -> int:
        with httpx.Client(timeout=15) as http:
            return http.get(f"{pub}/pub/job/adder/latest/echo", headers=admin()).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(call, range(8)))

    assert statuses == [200] * 8
    assert lifecycle.calls == 1


def test_the_permission_cache_is_bounded(
    client: httpx.Client, start_pub: Callable[..., str], lifecycle: LifecycleStandIn
) -> None:
    pub = start_pub(auth_cache_size=1)

    for _ in range(2):
        client.get(f"{pub}/pub/job/adder/latest/echo", headers=admin())
        client.get(f"{pub}/pub/job/adder/1.0.0/echo", headers=admin())

    assert lifecycle.calls == 4


def test_a_cached_permission_expires(
    client: httpx.Client, start_pub: Callable[..., str], lifecycle: LifecycleStandIn
) -> None:
    pub = start_pub(auth_cache_ttl=0.2)

    client.get(f"{pub}/pub/job/adder/latest/echo", headers=admin())
    client.get(f"{pub}/pub/job/adder/latest/echo", headers=admin())
    time.sleep(0.3)
    client.get(f"{pub}/pub/job/adder/latest/echo", headers=admin())

    assert lifecycle.calls == 2


def test_lifecycle_down_gives_503_naming_lifecycle(
    client: httpx.Client, pub: str, lifecycle: LifecycleStandIn
) -> None:
    assert lifecycle.server is not None
    lifecycle.server.stop()

    response = client.get(f"{pub}/pub/job/adder/latest/echo", headers=admin())

    assert response.status_code == 503
    assert response.json()["error"].startswith("Pub cannot check permissions: Lifecycle ")


def test_lifecycle_down_serves_a_stale_grant_within_its_bound(
    client: httpx.Client, start_pub: Callable[..., str], lifecycle: LifecycleStandIn
) -> None:
    pub = start_pub(auth_cache_ttl=0.1, auth_stale_ttl=0.6)
    assert client.get(f"{pub}/pub/job/adder/latest/echo", headers=admin()).status_code == 200
    refused = client.get(
        f"{pub}/pub/job/adder/latest/echo", headers={"X-Racetrack-Auth": GUEST_TOKEN}
    )
    assert lifecycle.server is not None
    lifecycle.server.stop()
    time.sleep(0.2)

    stale = client.get(f"{pub}/pub/job/adder/latest/echo", headers=admin())
    stale_refusal = client.get(
        f"{pub}/pub/job/adder/latest/echo", headers={"X-Racetrack-Auth": GUEST_TOKEN}
    )
    time.sleep(0.5)
    expired = client.get(f"{pub}/pub/job/adder/latest/echo", headers=admin())

    assert refused.status_code == 403
    assert stale.status_code == 200
    assert stale_refusal.status_code == 503
    assert expired.status_code == 503


def test_a_job_that_is_down_gives_502_naming_it(client: httpx.Client, pub: str) -> None:
    response = client.get(f"{pub}/pub/job/ghost/latest/echo", headers=admin())

    assert response.status_code == 502
    body = response.json()
    assert "job ghost 1.0.0 is not reachable" in body["error"]
    assert body["error"].startswith("Reverse proxy error")
    assert (body["job_name"], body["job_version"]) == ("ghost", "1.0.0")


def test_a_refused_connection_is_retried_after_asking_lifecycle_again(
    client: httpx.Client, pub: str, lifecycle: LifecycleStandIn, job: Server
) -> None:
    lifecycle.jobs["moving"] = {"1.0.0": refused_url()}
    assert client.get(f"{pub}/pub/job/moving/latest/echo", headers=admin()).status_code == 502
    # The job moves while Pub still has its old address cached.
    lifecycle.jobs["moving"]["1.0.0"] = job.url
    calls = lifecycle.calls

    response = client.get(f"{pub}/pub/job/moving/latest/echo", headers=admin())

    assert response.status_code == 200
    assert lifecycle.calls == calls + 1


def test_a_silent_job_gives_504(client: httpx.Client, start_pub: Callable[..., str]) -> None:
    pub = start_pub(upstream_timeout=0.5)

    response = client.get(f"{pub}/pub/job/adder/latest/slow", headers=admin())

    assert response.status_code == 504
    assert response.json() == {
        "error": "Reverse proxy error: job adder 1.2.0 did not answer within 0.5 s",
        "job_name": "adder",
        "job_version": "1.2.0",
    }


def test_an_upgrade_without_a_valid_handshake_is_refused_not_proxied(
    client: httpx.Client, pub: str, lifecycle: LifecycleStandIn
) -> None:
    # No Sec-WebSocket-Key: the server's WebSocket library refuses it before Pub is asked.
    response = client.get(
        f"{pub}/pub/job/adder/latest/ws",
        headers=admin(Connection="Upgrade", Upgrade="websocket"),
    )

    assert response.status_code == 400
    assert lifecycle.calls == 0


@pytest.mark.parametrize("path", ["/pub/job/adder", "/pub/job/..%2F/latest/x", "/pub/job/a b/1/x"])
def test_a_malformed_job_path_gets_404(client: httpx.Client, pub: str, path: str) -> None:
    response = client.get(f"{pub}{path}", headers=admin())

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"


def test_job_answers_are_sandboxed_except_the_jobs_swagger_page(
    client: httpx.Client, pub: str
) -> None:
    """Jobs share Pub's origin: a sandbox gives their pages an opaque one (docs/security.md)."""
    page = client.get(f"{pub}/pub/job/adder/1.0.0/page.html", headers=admin())
    docs = [
        client.get(f"{pub}/pub/job/adder/1.0.0/{d}", headers=admin()) for d in ("docs", "docs/")
    ]
    nested = client.get(f"{pub}/pub/job/adder/1.0.0/api/docs", headers=admin())

    policy = "sandbox allow-scripts allow-forms allow-popups allow-downloads"
    assert page.headers["content-security-policy"] == policy
    assert nested.headers["content-security-policy"] == policy
    assert [answer.status_code for answer in docs] == [200, 200]
    assert all("content-security-policy" not in answer.headers for answer in docs)


def test_the_docs_of_a_job_type_that_serves_no_swagger_page_of_racetracks_are_sandboxed(
    client: httpx.Client, pub: str, lifecycle: LifecycleStandIn
) -> None:
    """A job type whose runtime may let the job's own code answer /docs (a third-party one
    that does not declare docs_page): that page gets the sandbox like any other (it was
    exempt by its path alone, and could call other jobs with the visitor's cookie)."""
    lifecycle.foreign_docs.add("adder")
    docs = [
        client.get(f"{pub}/pub/job/adder/1.0.0/{d}", headers=admin()) for d in ("docs", "docs/")
    ]

    policy = "sandbox allow-scripts allow-forms allow-popups allow-downloads"
    assert [answer.headers.get("content-security-policy") for answer in docs] == [policy] * 2
