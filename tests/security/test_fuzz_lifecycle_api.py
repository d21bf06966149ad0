"""Fuzzing the Lifecycle API from its own OpenAPI document with schemathesis (issue 15).

Every operation of ``/lifecycle/openapi.json`` is called with generated path parameters, query
strings and the bodies it declares, by an admin, against a real ``racetrack up`` on SQLite: no
answer may be a 5xx, and every answer must have a documented status and match its schema
(an error is ``{"error", "type"}``). Routes that reach outside 127.0.0.1 with what they are
given (plugin installs, which ask a package index) or end the admin's own session are left out.

Examples per operation follow the Hypothesis profile: a tenth of its ``max_examples`` (15 with
``ci``, 10 with ``dev``, 500 with ``long``), which keeps the module under a minute in CI.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from schemathesis.core.result import Ok

from racetrack_core.testing.server import AUTH_HEADER, QUICK_ENV, RacetrackServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

#: Operations left out, and why.
EXCLUDED = {
    "/api/v1/plugin/install": "installs from a package index or a git URL: no network in tests",
    "/api/v1/plugin/upload/{filename}": "installs the uploaded wheel into the server",
    "/api/v1/users/logout": "ends the admin session the other operations use",
}
EXAMPLES = max(5, (settings().max_examples or 100) // 10)
#: What every answer must satisfy. Left out: schemathesis's check that a request it thinks
#: valid is accepted, since most routes do not declare their bodies in the document yet, so a
#: request without one looks valid to it and is rightly answered 400.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def lifecycle_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RacetrackServer]:
    home = tmp_path_factory.mktemp("schemathesis") / "racetrack-home"
    with RacetrackServer(home, env=QUICK_ENV) as server:
        server.login()
        yield server


@pytest.fixture(scope="module")
def lifecycle_schema(lifecycle_server: RacetrackServer) -> schemathesis.BaseSchema:
    schema: schemathesis.BaseSchema = schemathesis.openapi.from_url(
        f"{lifecycle_server.lifecycle}/openapi.json"
    )
    for path in EXCLUDED:
        schema = schema.exclude(path=path)
    return schema


def test_every_answer_is_documented_and_never_a_server_error(
    lifecycle_schema: schemathesis.BaseSchema, lifecycle_server: RacetrackServer
) -> None:
    # One test walks every operation (schemathesis's lazy pytest fixture does not work with
    # pytest 9): each failure is kept, with its operation, and all are shown at the end.
    token = lifecycle_server.token
    failures: dict[str, str] = {}
    operations = [
        result.ok()
        for result in lifecycle_schema.get_all_operations()
        if isinstance(result, Ok)  # an operation the document describes wrongly is an Err
    ]
    assert len(operations) == len(list(lifecycle_schema.get_all_operations()))
    assert len(operations) > 40, "the document lost its operations"
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(headers={AUTH_HEADER: token}, timeout=30, checks=CHECKS)

        try:
            call()
        except (Exception, BaseExceptionGroup) as failure:  # schemathesis's FailureGroup is one
            failures[operation.label] = f"{type(failure).__name__}: {failure}"[:3000]
    assert failures == {}, "\n\n".join(f"{label}\n{text}" for label, text in failures.items())
