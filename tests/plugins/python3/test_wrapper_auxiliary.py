"""``auxiliary_endpoints_v2``: where each argument comes from, its conversion, and the errors."""

from __future__ import annotations

from http import HTTPMethod
from typing import Annotated, Any

import pytest

from racetrack_plugins.python3.wrapper.auxiliary import MISSING, RouteEndpoint, read_routes
from racetrack_plugins.python3.wrapper.endpoint_config import EndpointConfig
from racetrack_plugins.python3.wrapper.errors import EntrypointError, RouteArgumentError


class Body:  # FastAPI's markers are recognised by their class names
    pass


class Query:
    pass


class Handlers:
    def multiply(self, factor: float, value: float) -> float:
        return factor * value

    def scale(self, value: Annotated[float, Body()], by: Annotated[int, Query()] = 2) -> float:
        return value * by

    def search(self, text: str, exact: bool = False, limit: int | None = None) -> Any:
        return (text, exact, limit)

    def create(self, name: str, tags: list[str]) -> Any:
        return (name, tags)


def routes_of(*configs: EndpointConfig) -> list[RouteEndpoint]:
    class Job:
        def auxiliary_endpoints_v2(self) -> list[EndpointConfig]:
            return list(configs)

    return read_routes(Job(), {})


def test_path_query_and_body_arguments_are_bound_as_fastapi_did() -> None:
    handlers = Handlers()
    multiply, scale, search, create = routes_of(
        EndpointConfig("/multiply/{factor}", HTTPMethod.POST, handlers.multiply),
        EndpointConfig("/scale", HTTPMethod.POST, handlers.scale),
        EndpointConfig("/search", HTTPMethod.GET, handlers.search),
        EndpointConfig("create", "post", handlers.create),
    )
    params = multiply.match("POST", "/multiply/2.5")
    assert params == {"factor": "2.5"}
    assert multiply.bind(params, {"value": "4"}, MISSING) == {"factor": 2.5, "value": 4.0}
    assert multiply.match("GET", "/multiply/2.5") is None
    assert multiply.match("POST", "/multiply/2/3") is None
    assert scale.bind({}, {"by": "3"}, 1.5) == {"value": 1.5, "by": 3}
    assert search.bind({}, {"text": "x", "exact": "true"}, MISSING) == {"text": "x", "exact": True}
    assert search.bind({}, {"text": "x", "limit": "5"}, MISSING)["limit"] == 5
    assert create.path == "/create"
    assert create.bind({}, {}, {"name": "n", "tags": ["a"]}) == {"name": "n", "tags": ["a"]}


@pytest.mark.parametrize(
    ("query", "body", "message"),
    [
        ({}, MISSING, "missing required argument 'text'"),
        (
            {"text": "x", "exact": "perhaps"},
            MISSING,
            "'exact' is 'perhaps', which is not a valid bool",
        ),
        ({"text": "x", "limit": "five"}, MISSING, "'limit' is 'five', which is not a valid int"),
    ],
)
def test_a_request_that_does_not_fit_is_a_422(
    query: dict[str, str], body: Any, message: str
) -> None:
    [search] = routes_of(EndpointConfig("/search", HTTPMethod.GET, Handlers().search))
    with pytest.raises(RouteArgumentError, match=message) as raised:
        search.bind({}, query, body)
    assert raised.value.status == 422


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            EndpointConfig("/x", "DELETE", Handlers().search),
            "method DELETE at '/x'; use GET or POST",
        ),
        (EndpointConfig("/x", "GET", "not callable"), "is not callable"),  # type: ignore[arg-type]
        (EndpointConfig("/../x", "GET", Handlers().search), "without '..' or spaces"),
    ],
)
def test_a_wrong_endpoint_config_stops_the_job_with_a_clear_error(
    config: EndpointConfig, message: str
) -> None:
    with pytest.raises(EntrypointError, match=message):
        routes_of(config)


def test_a_list_is_required() -> None:
    class Job:
        def auxiliary_endpoints_v2(self) -> dict[str, Any]:
            return {}

    with pytest.raises(EntrypointError, match="must return a list of EndpointConfig"):
        read_routes(Job(), {})
