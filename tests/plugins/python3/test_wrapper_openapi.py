"""GET /openapi.json built from type hints, and the Swagger UI page with local assets."""

from __future__ import annotations

from typing import Any, Literal, Optional

import pytest

from racetrack_plugins.python3.wrapper.openapi import schema_of

JOB = '''
    class Job:
        def perform(self, number: int, ratio: float = 0.5, names: list[str] | None = None) -> bool:
            """Check a number.

            More words.
            """
            return True

        def docs_input_example(self):
            return {"number": 7907}

        def docs_input_examples(self):
            return {"/explain": {"text": "why"}}

        def auxiliary_endpoints(self):
            return {"/explain": self.explain}

        async def explain(self, text: str, options: dict[str, int] = {}) -> dict[str, str]:
            return {"text": text}
'''


@pytest.mark.parametrize(
    ("annotation", "schema"),
    [
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (str, {"type": "string"}),
        (bool, {"type": "boolean"}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (list, {"type": "array", "items": {}}),
        (dict, {"type": "object", "additionalProperties": True}),
        (dict[str, float], {"type": "object", "additionalProperties": {"type": "number"}}),
        (Optional[int], {"type": "integer", "nullable": True}),  # noqa: UP045
        (int | str, {"anyOf": [{"type": "integer"}, {"type": "string"}]}),
        (Literal["a", "b"], {"enum": ["a", "b"]}),
        (Any, {}),
        (object, {}),
    ],
)
def test_schema_of_type_hints(annotation, schema):
    assert schema_of(annotation) == schema


@pytest.mark.parametrize(
    ("prefix", "server"), [("", "/"), ("/pub/job/primer/0.0.1", "/pub/job/primer/0.0.1")]
)
def test_openapi_document_describes_perform_and_auxiliary_endpoints(
    write_job, serve, prefix, server
):
    with serve(write_job(JOB)) as client:
        document = client.get(f"{prefix}/openapi.json").json()
    assert document["openapi"].startswith("3.0")
    assert document["info"] == {"title": "primer", "version": "1.2.3"}
    assert document["servers"] == [{"url": server}]
    perform = document["paths"]["/api/v1/perform"]["post"]
    assert perform["summary"] == "Check a number."
    body = perform["requestBody"]["content"]["application/json"]
    assert body["example"] == {"number": 7907}
    assert body["schema"] == {
        "type": "object",
        "properties": {
            "number": {"type": "integer"},
            "ratio": {"type": "number", "default": 0.5},
            "names": {
                "type": "array",
                "items": {"type": "string"},
                "nullable": True,
                "default": None,
            },
        },
        "required": ["number"],
        "additionalProperties": False,
    }
    ok = perform["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"type": "boolean"}
    assert perform["responses"]["400"]["content"]["application/json"]["schema"]["required"] == [
        "error",
        "type",
    ]
    explain = document["paths"]["/api/v1/explain"]["post"]
    explain_body = explain["requestBody"]["content"]["application/json"]
    assert explain_body["example"] == {"text": "why"}
    assert explain_body["schema"]["properties"]["options"] == {
        "type": "object",
        "additionalProperties": {"type": "integer"},
        "default": {},
    }
    assert document["components"]["securitySchemes"] == {
        "RacetrackAuth": {"type": "apiKey", "in": "header", "name": "X-Racetrack-Auth"}
    }
    assert document["security"] == [{"RacetrackAuth": []}]
    assert {"/api/v1/parameters", "/live", "/ready", "/health"} <= set(document["paths"])


def test_openapi_before_init_describes_perform_from_the_class(write_job, serve):
    source = """
        import threading

        class Job:
            def __init__(self):
                threading.Event().wait(0.5)

            def perform(self, x: int) -> int:
                return x
    """
    with serve(write_job(source), wait=False) as client:
        document = client.get("/openapi.json").json()
    schema = document["paths"]["/api/v1/perform"]["post"]["requestBody"]["content"]
    assert schema["application/json"]["schema"]["properties"] == {"x": {"type": "integer"}}


@pytest.mark.parametrize("prefix", ["", "/pub/job/primer/0.0.1"])
def test_docs_page_uses_relative_urls_and_local_assets(write_job, serve, prefix):
    with serve(write_job(JOB)) as client:
        page = client.get(f"{prefix}/docs")
        css = client.get(f"{prefix}/swagger-ui/swagger-ui.css")
        bundle = client.get(f"{prefix}/swagger-ui/swagger-ui-bundle.js")
        slash = client.get(f"{prefix}/docs/", follow_redirects=False)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'href="swagger-ui/swagger-ui.css"' in page.text
    assert 'src="swagger-ui/swagger-ui-bundle.js"' in page.text
    assert 'url: "openapi.json"' in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # no CDN, no absolute URL
    assert "<title>primer - Swagger UI</title>" in page.text
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert bundle.status_code == 200
    assert "SwaggerUIBundle" in bundle.text
    assert (slash.status_code, slash.headers["location"]) == (307, "../docs")


def test_auxiliary_endpoints_v2_are_in_the_document(write_job, serve) -> None:
    source = """
        from http import HTTPMethod
        from racetrack_job_wrapper_test_config import EndpointConfig

        class Job:
            def perform(self) -> int:
                return 1

            def auxiliary_endpoints_v2(self):
                return [
                    EndpointConfig("/multiply/{factor}", HTTPMethod.POST, self.multiply,
                                   other_options={"tags": ["items"]}),
                    EndpointConfig("/square", HTTPMethod.GET, self.square),
                ]

            def multiply(self, factor: float, value: float) -> float:
                return factor * value

            def square(self, x: int) -> int:
                return x * x
    """
    import sys

    from racetrack_plugins.python3.wrapper import endpoint_config

    sys.modules["racetrack_job_wrapper_test_config"] = endpoint_config
    with serve(write_job(source)) as client:
        paths = client.get("/openapi.json").json()["paths"]
        assert client.post("/api/v1/multiply/3?value=2").json() == 6.0
    multiply = paths["/api/v1/multiply/{factor}"]["post"]
    assert multiply["tags"] == ["items"]
    assert [(p["name"], p["in"], p["required"]) for p in multiply["parameters"]] == [
        ("factor", "path", True),
        ("value", "query", True),
    ]
    square = paths["/api/v1/square"]["get"]
    assert square["parameters"][0]["schema"] == {"type": "integer"}
