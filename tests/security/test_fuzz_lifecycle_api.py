"""Fuzzing the Lifecycle API from its own OpenAPI document with schemathesis (issue 15).

Every operation of ``/lifecycle/openapi.json`` is called with generated path parameters, query
strings and the bodies it declares, against a real ``racetrack up`` on SQLite, with the
admin's token (Pub's internal token for the routes only Pub may call). Checks on every answer:
no 5xx, a documented status and content type, a body that matches its schema (an error is
``{"error", "type"}``; records are closed), and a request the document calls valid is not
refused as bad input (positive acceptance). The server holds a deployed job, a user, a
consumer with a token, a grant, a token and an asynchronous call first, and half the examples
name them in their path parameters, so that success answers are checked too, not only 404s.
Left out: plugin installs (they ask a package index, or install the uploaded wheel).

Examples per operation follow the Hypothesis profile: a tenth of its ``max_examples`` (15 with
``ci``, 10 with ``dev``, 500 with ``long``), which keeps the module under a minute in CI.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks
from schemathesis.core.result import Ok

from racetrack_core.settings import INTERNAL_TOKEN_FILE
from racetrack_core.testing.server import AUTH_HEADER, QUICK_ENV, RacetrackServer

#: Operations left out, and why.
EXCLUDED = {
    "/api/v1/plugin/install": "installs from a package index or a git URL: no network in tests",
    "/api/v1/plugin/upload/{filename}": "installs the uploaded wheel into the server",
}
#: Where a 401 is an answer to what was sent (a wrong password), not to the admin's token;
#: anywhere else a 401 means the run lost its token, and every later answer would be a
#: refusal that proves nothing.
CREDENTIAL_CHECKS = {"POST /api/v1/users/login", "PUT /api/v1/users/change_password"}
#: Paths only Pub may call, with Lifecycle's internal token (the admin gets 403 there).
INTERNAL = ("/api/v1/async/task", "/api/v1/job/call-times")
#: Revokes the token it is called with and answers a new one, which the run then uses.
REGENERATE = "POST /api/v1/auth/token/user/regenerate"
EXAMPLES = max(5, (settings().max_examples or 100) // 10)
#: About 60 operations, each example well under a second; ``long`` takes about 15 minutes.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(max(600, 60 * EXAMPLES))]
#: What every answer must satisfy; positive_data_acceptance: a request that the document
#: says is valid is not refused as bad input (400, 405, 413, ...), now that every route
#: declares its body and query parameters (``racetrack_core/lifecycle/bodies.py``).
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.positive_data_acceptance,
]
#: Refusals that depend on what the server holds, which a document cannot say: a request of
#: the right shape may still name a job type, a target, a user or a family this server lacks
#: (or a plugin built into it, which cannot be uninstalled),
#: or a time that has passed (a document cannot say "after now"); and two rules between
#: fields (a version needs its family) that this document leaves to the route. On these
#: operations a 400 passes the acceptance check when its error is such a sentence (any other
#: 400 still fails it).
NO_SUBJECT = r"^no (user|job family|external service consumer) (named|with id or name)"
BUILT_IN = r"^'[^']*' is a built-in plugin"
REFUSALS_BY_STATE = {
    "POST /api/v1/deploy": r"^manifest is not valid|^manifest field|^unknown job type",
    "POST /api/v1/job/{name}/{version}/move": r"^unknown infrastructure target '.*'\. Installed",
    "GET /api/v1/deploy": r"^query parameter 'job_version' needs 'job_name' too",
    "POST /api/v1/grants": NO_SUBJECT + r"|^a grant on an? (job version|endpoint) needs",
    "POST /api/v1/auth/allow/esc/{esc_id}/job/{family}/scope/{scope}": NO_SUBJECT,
    "POST /api/v1/auth/allow/job_family/{src}/job/{dst}/scope/{scope}": NO_SUBJECT,
    "POST /api/v1/escs/{id}/auth_token": r"^field 'expiry_time' is in the past",
    "POST /api/v1/users/register": r"^the password is (the username|one of the most common)",
    "DELETE /api/v1/plugin/{name}": BUILT_IN,
    "DELETE /api/v1/plugin/{name}/{version}": BUILT_IN,
}


def refused_by_state(label: str, response: Any) -> bool:
    """Whether ``response`` is a 400 that :data:`REFUSALS_BY_STATE` allows on ``label``."""
    pattern = REFUSALS_BY_STATE.get(label)
    if pattern is None or response.status_code != 400:
        return False
    return re.search(pattern, str(response.json().get("error", "")), re.DOTALL) is not None


ENTRYPOINT = """
class JobEntrypoint:
    def perform(self, x: int = 0) -> int:
        return x
"""
JOB_YAML = """\
name: fuzzed
version: 0.0.1
owner_email: owner@example.com
jobtype: python3:latest
jobtype_extra:
  entrypoint_path: entrypoint.py
"""


@pytest.fixture(scope="module")
def lifecycle_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RacetrackServer]:
    home = tmp_path_factory.mktemp("schemathesis") / "racetrack-home"
    with RacetrackServer(home, env=QUICK_ENV) as server:
        server.login()
        yield server


def seed(server: RacetrackServer, folder: Path, internal_token: str) -> dict[str, dict[str, str]]:
    """Records for the run to find: a deployed job, a user, a consumer with a token, a grant,
    a token and an asynchronous call. Answers path parameter values that name them, by the
    path each set is for (generated values almost never name anything: a 404)."""
    folder.mkdir()
    (folder / "entrypoint.py").write_text(ENTRYPOINT)
    (folder / "job.yaml").write_text(JOB_YAML)
    deployment = server.deploy_folder(folder, timeout=300)
    assert deployment["status"] == "done", deployment

    def made(method: str, path: str, body: Any, token: str = "") -> Any:
        answer = server.api(method, path, json=body, token=token)
        assert answer.status_code in (200, 201), (path, answer.text)
        return answer.json()

    user = made("POST", "/users/register", {"username": "fuzz@example.com", "password": "Fz-8x!q2"})
    esc = made("POST", "/escs", {"name": "fuzz-consumer"})
    esc_token = made("POST", f"/escs/{esc['id']}/auth_token", {"expires_in_days": 1})
    grant = made(
        "POST",
        "/grants",
        {"subject_kind": "esc", "subject_name": esc["name"], "scope": "call_job"},
    )
    token = made("POST", "/tokens", {"expires_in_days": 1})
    task = {"id": "fuzzfuzzfuzzfuzz", "job_name": "fuzzed", "job_version": "0.0.1"}
    made("POST", "/async/task", {**task, "method": "POST"}, token=internal_token)
    job = {"name": "fuzzed", "version": "0.0.1"}
    return {
        "/api/v1/job/{name}/{version}": job,
        "/api/v1/auth/can-call-job/{name}/{version}/": {**job, "path": "perform"},
        "/api/v1/deploy/{deployment_id}": {"deployment_id": str(deployment["id"])},
        "/api/v1/users/{username}/": {"username": user["username"]},
        "/api/v1/escs/{id}": {"id": str(esc["id"]), "token_id": str(esc_token["id"])},
        "/api/v1/grants/{id}": {"id": str(grant["id"])},
        "/api/v1/tokens/{id}": {"id": str(token["id"])},
        "/api/v1/async/task/{task_id}": {"task_id": task["id"]},
        "/api/v1/auth/allow/esc/": {"esc_id": str(esc["id"]), "family": "fuzzed"},
        "/api/v1/auth/allow/job_family/": {"src": "fuzzed", "dst": "fuzzed"},
    }


def naming_records(case: Any, known: dict[str, dict[str, str]]) -> Any:
    """``case`` with its path parameters replaced by values that name seeded records (not
    for a log stream: it answers until the client leaves, so only its 404 is tried here)."""
    if case.operation.path.endswith("/logs/stream"):
        return case
    for prefix, values in known.items():
        if case.operation.path.startswith(prefix):
            for name in case.path_parameters or {}:
                if name in values:
                    case.path_parameters[name] = values[name]
    return case


@pytest.fixture(scope="module")
def lifecycle_schema(lifecycle_server: RacetrackServer) -> schemathesis.BaseSchema:
    schema: schemathesis.BaseSchema = schemathesis.openapi.from_url(
        f"{lifecycle_server.lifecycle}/openapi.json"
    )
    for path in EXCLUDED:
        schema = schema.exclude(path=path)
    return schema


def test_every_answer_is_documented_and_never_a_server_error(
    lifecycle_schema: schemathesis.BaseSchema, lifecycle_server: RacetrackServer, tmp_path: Path
) -> None:
    # One test walks every operation (schemathesis's lazy pytest fixture does not work with
    # pytest 9): each failure is kept, with its operation, and all are shown at the end.
    session = {"token": lifecycle_server.token}
    internal_token = (lifecycle_server.home / INTERNAL_TOKEN_FILE).read_text().strip()
    known = seed(lifecycle_server, tmp_path / "job", internal_token)
    failures: dict[str, str] = {}
    statuses: dict[str, Counter[int]] = {}
    all_operations = [
        result.ok()
        for result in lifecycle_schema.get_all_operations()
        if isinstance(result, Ok)  # an operation the document describes wrongly is an Err
    ]
    assert len(all_operations) == len(list(lifecycle_schema.get_all_operations()))
    assert len(all_operations) > 40, "the document lost its operations"
    operations = list(all_operations)
    # Deletions after the rest, so that the others still find the seeded records; a
    # consumer's token before the consumer, a grant before its subject.
    deletions = sorted(
        (op for op in operations if op.method.upper() == "DELETE"),
        key=lambda op: op.path,
        reverse=True,
    )
    operations = [op for op in operations if op not in deletions] + deletions
    for operation in operations:
        generated = operation.as_strategy()
        found = generated.map(lambda case: naming_records(case, known))

        @given(case=st.one_of(generated, found))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: schemathesis.Case[Any]) -> None:
            label = case.operation.label
            internal = case.operation.path.startswith(INTERNAL)
            token = internal_token if internal else session["token"]
            response = case.call(headers={AUTH_HEADER: token}, timeout=30)
            statuses.setdefault(label, Counter())[response.status_code] += 1
            if label == REGENERATE and response.status_code == 200:
                session["token"] = response.json()["new_token"]  # the old one is revoked
            chosen = CHECKS
            if refused_by_state(label, response):
                chosen = [check for check in CHECKS if check is not checks.positive_data_acceptance]
            case.validate_response(response, checks=chosen)

        try:
            call()
        except (Exception, BaseExceptionGroup) as failure:  # schemathesis's FailureGroup is one
            failures[operation.label] = f"{type(failure).__name__}: {failure}"[:3000]
    assert failures == {}, "\n\n".join(f"{label}\n{text}" for label, text in failures.items())
    # Every operation was called, and the admin's token worked throughout.
    assert set(statuses) == {operation.label for operation in all_operations}
    lost = {label: dict(seen) for label, seen in statuses.items() if seen[401]}
    assert set(lost) <= CREDENTIAL_CHECKS, lost
    forbidden = {label: dict(seen) for label, seen in statuses.items() if seen[403]}
    assert forbidden == {}, forbidden  # the admin (or Pub's token) may do everything
