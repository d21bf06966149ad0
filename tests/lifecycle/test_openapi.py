"""The Lifecycle API's OpenAPI document: every route declares its answer (and its body and
query parameters), the declared body is what the route checks, and no answer names a secret."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from racetrack_core.lifecycle import json_schemas


def document(client: TestClient) -> dict[str, Any]:
    answer = client.get("/lifecycle/openapi.json")
    assert answer.status_code == 200
    data: dict[str, Any] = answer.json()
    return data


def test_every_api_route_declares_its_answer_and_every_body_route_its_body(
    shared_client: TestClient,
) -> None:
    paths = document(shared_client)["paths"]
    undeclared = []
    for path, operations in paths.items():
        for method, operation in operations.items():
            success = [status for status in operation["responses"] if status.startswith("2")]
            content = operation["responses"][success[0]]["content"]
            if not all("schema" in media for media in content.values()):
                undeclared.append(f"{method.upper()} {path}: no answer schema")
            bodiless = path.startswith(("/api/v1/users/logout", "/api/v1/auth/")) or any(
                word in path for word in ("/activate", "/deactivate", "/redeploy", "/approve")
            )
            wants_body = method in ("post", "put", "patch") and not bodiless
            if wants_body and "requestBody" not in operation:
                undeclared.append(f"{method.upper()} {path}: no body")
    assert undeclared == []
    assert len(paths) > 40


def test_statuses_and_query_parameters_are_documented(shared_client: TestClient) -> None:
    paths = document(shared_client)["paths"]
    assert "201" in paths["/api/v1/async/task"]["post"]["responses"]
    assert "202" in paths["/api/v1/job/{name}/{version}/redeploy"]["post"]["responses"]
    page = paths["/api/v1/job_family/jobs"]["get"]["parameters"]
    per_page = next(p for p in page if p["name"] == "per_page")
    assert per_page["in"] == "query"
    assert per_page["schema"] == {"type": "integer", "minimum": 1, "maximum": 500}
    stream = paths["/api/v1/job/{name}/{version}/logs/stream"]["get"]["responses"]["200"]
    assert list(stream["content"]) == ["text/plain"]
    allow = paths["/api/v1/auth/allow/esc/{esc_id}/job/{family}/scope/{scope}"]["post"]
    by_name = {parameter["name"]: parameter["schema"] for parameter in allow["parameters"]}
    assert by_name["esc_id"] == {"type": "string", "minLength": 1}
    scope = by_name["scope"]
    if "$ref" in scope:
        scope = document(shared_client)["components"]["schemas"][scope["$ref"].split("/")[-1]]
    assert "call_job" in scope["enum"]


def test_answers_are_closed_and_name_no_secret(shared_client: TestClient) -> None:
    components = document(shared_client)["components"]["schemas"]
    allowed_tokens = {"Session": "token", "NewToken": "token", "Regenerated": "new_token"}
    for name, schema in components.items():
        fields = set(schema.get("properties", {}))
        secret = {f for f in fields if any(w in f for w in ("password", "secret", "hash", "token"))}
        secret -= {"tokens", allowed_tokens.get(name, "")}
        sent = ("Body", "Credentials", "Change", "Registration")
        if name.endswith(sent) or name in {"NewTask", "TaskUpdate"}:
            continue  # what a client sends
        assert secret == set(), name
    error = components["TaskUpdate"]["properties"]["error"]["anyOf"][0]
    assert error["minLength"] == 1  # the route refuses an empty error (found by schemathesis)
    assert components["JobRecord"]["additionalProperties"] is False
    assert components["TokenRecord"]["additionalProperties"] is False
    assert "token" not in components["TokenRecord"]["properties"]


def test_a_refused_body_names_the_field_and_never_repeats_the_value(
    client: TestClient, token: str
) -> None:
    headers = {"X-Racetrack-Auth": token}
    secret = "hunter2-do-not-echo"
    answer = client.post(
        "/api/v1/deploy",
        json={"manifest": {}, "git_credentials": {"username": "u", "password": [secret]}},
        headers=headers,
    )
    assert answer.status_code == 400
    assert secret not in answer.text
    assert answer.json()["error"].startswith("field 'git_credentials")
    calls = client.post(
        "/api/v1/job/call-times",
        json={"calls": [{"name": "", "version": "1", "last_call_time": 1}]},
        headers=headers,
    )
    assert calls.status_code in (400, 403)
    unknown = client.post("/api/v1/deploy", json={"manifest": {}, "surprise": 1}, headers=headers)
    assert unknown.json()["error"].startswith("unknown field 'surprise'; expected: build_context")


def test_problem_sentences() -> None:
    schema = {
        "type": "object",
        "required": ["calls"],
        "properties": {
            "calls": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"n": {"type": "integer", "minimum": 1}},
                    "required": ["n"],
                },
            }
        },
    }
    assert json_schemas.problem(schema, {}) == "field 'calls' is required"
    assert json_schemas.problem(schema, {"calls": [{}]}) == "field 'calls[0].n' is required"
    assert (
        json_schemas.problem(schema, {"calls": [{"n": 0}]})
        == "field 'calls[0].n' must be at least 1"
    )
    assert json_schemas.problem(schema, {"calls": "x"}) == "field 'calls' must be a list"
    assert json_schemas.problem(schema, {"calls": []}) is None


def test_registration_rules_are_in_the_document(shared_client: TestClient) -> None:
    components = document(shared_client)["components"]["schemas"]
    registration = components["Registration"]["properties"]
    assert registration["password"]["minLength"] == 8
    assert "pattern" in registration["username"]
    short = shared_client.post(
        "/api/v1/users/register", json={"username": "a@example.com", "password": "short1"}
    )
    assert short.status_code == 400
    assert short.json()["error"] == "field 'password' is too short: use at least 8 characters"
    digits = shared_client.post(
        "/api/v1/users/register", json={"username": "a@example.com", "password": "123456789"}
    )
    assert digits.json()["error"] == (
        "field 'password' is all digits: mix in letters or other characters"
    )


def test_uninstalling_a_plugin_that_is_not_installed_is_404(client: TestClient, token: str) -> None:
    answer = client.delete("/api/v1/plugin/no-such-plugin", headers={"X-Racetrack-Auth": token})
    assert answer.status_code == 404, answer.text
    assert "no plugin or distribution named 'no-such-plugin'" in answer.json()["error"]


#: What ``\s`` means in ECMA-262, which is how the document's readers (and schemathesis) read
#: a pattern: not Python's set (which adds \x1c-\x1f and \x85, and leaves out \ufeff).
ECMA_SPACE = "\t\n\v\f\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


def test_every_e_mail_address_the_document_allows_is_one_the_route_takes(
    shared_client: TestClient,
) -> None:
    """schemathesis found "...@...\\x85" allowed by the document (\\x85 is no space in
    ECMA-262) and refused by the route (it is one in Python)."""
    import re

    from racetrack_core.lifecycle.accounts import USERNAME_PATTERN

    components = document(shared_client)["components"]["schemas"]
    pattern = components["Registration"]["properties"]["username"]["pattern"]
    as_ecma = re.compile(pattern.replace("\\s", ECMA_SPACE).replace("$", "\\Z"))
    for char in map(chr, range(0x3100)):
        address = f"jane{char}@example.com"
        if as_ecma.search(address):
            assert USERNAME_PATTERN.fullmatch(address), repr(char)


def test_the_base64_the_document_allows_is_what_the_route_decodes(
    shared_client: TestClient,
) -> None:
    """schemathesis sent ``"/x="`` as an asynchronous call's body: the document's pattern let
    it through, and the route refused it as not base64."""
    import base64
    import binascii
    import itertools
    import re

    task = document(shared_client)["components"]["schemas"]["NewTask"]["properties"]
    variants = task["request_body"].get("anyOf", [task["request_body"]])
    pattern = re.compile(next(v["pattern"] for v in variants if "pattern" in v))
    for length in range(7):
        for text in map("".join, itertools.product("A/=", repeat=length)):
            try:
                base64.b64decode(text, validate=True)
                decodes = True
            except binascii.Error:
                decodes = False
            if pattern.search(text):  # the route takes a little more (extra padding): fine
                assert decodes, text
