"""``/pub/fatman/{name}/{version}/...``, the original Racetrack's oldest spelling of job routes.

Served exactly as ``/pub/job/...`` (the same permission check, version resolution and
forwarding), with a ``Deprecation`` header and a ``Link`` to the current route on every answer.
Run against the ASGI app here and against the front server in ``test_assembly``.
"""

from __future__ import annotations

import httpx
import pytest

from tests.pub.servers import GUEST_TOKEN, LifecycleStandIn, admin


def answer_without_volatile(response: httpx.Response) -> tuple[int, object]:
    body = response.json()
    if isinstance(body, dict):
        body.pop("requestId", None)
    return response.status_code, body


@pytest.mark.parametrize("prefix", ["/pub", ""])
def test_a_fatman_route_reaches_the_job_as_its_job_route(
    pub: str, client: httpx.Client, lifecycle: LifecycleStandIn, prefix: str
) -> None:
    answer = client.post(
        f"{pub}{prefix}/fatman/adder/latest/api/v1/perform?x=1",
        headers=admin(),
        content=b'{"a": 1}',
    )

    assert answer.status_code == 200, answer.text
    seen = answer.json()
    # The job is called at its resolved version, on the route jobs serve today.
    assert seen["path"] == "/pub/job/adder/1.2.0/api/v1/perform"
    assert seen["query"] == "x=1"
    assert seen["body"] == '{"a": 1}'
    assert ["x-caller-name", "User admin"] in seen["headers"]
    assert answer.headers["x-job-header"] == "from-job"
    assert answer.headers["deprecation"] == "true"
    assert (
        answer.headers["link"] == '</pub/job/adder/latest/api/v1/perform>; rel="successor-version"'
    )


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"X-Racetrack-Auth": "not-a-token"}, 401), (admin(), 200)],
)
def test_auth_applies_as_on_the_job_route(
    pub: str, client: httpx.Client, headers: dict[str, str], status: int
) -> None:
    old = client.get(f"{pub}/pub/fatman/adder/1.0.0/echo", headers=headers)
    new = client.get(f"{pub}/pub/job/adder/1.0.0/echo", headers=headers)

    assert old.status_code == new.status_code == status
    if status != 200:
        assert answer_without_volatile(old) == answer_without_volatile(new)
    assert old.headers["deprecation"] == "true"
    assert "deprecation" not in new.headers


def test_a_refused_caller_and_an_unknown_job_answer_as_on_the_job_route(
    pub: str, client: httpx.Client
) -> None:
    guest = {"X-Racetrack-Auth": GUEST_TOKEN}
    for path, headers in [("adder/1.0.0/echo", guest), ("nope/1.0.0/echo", admin())]:
        old = client.get(f"{pub}/pub/fatman/{path}", headers=headers)
        new = client.get(f"{pub}/pub/job/{path}", headers=headers)
        assert old.status_code in (403, 404)
        assert answer_without_volatile(old) == answer_without_volatile(new)
        assert old.headers["link"] == f'</pub/job/{path}>; rel="successor-version"'


def test_a_malformed_fatman_path_is_a_404(pub: str, client: httpx.Client) -> None:
    answer = client.get(f"{pub}/pub/fatman/", headers=admin())
    assert answer.status_code == 404
    assert "error" in answer.json()
