"""A method's result as JSON, and the body of error answers."""

from __future__ import annotations

import dataclasses
import datetime
import json
import math

import pytest
from starlette.responses import JSONResponse

from racetrack_plugins.python3.wrapper.encoding import encode_json, error_body


@pytest.mark.parametrize(
    "value",
    [
        {"ok": True, "job": "bench", "answer": 42},
        [1, 2.5, None, "zażółć", {"nested": ["x"]}],
        "text",
        7,
        None,
    ],
)
def test_plain_types_are_encoded_as_json_dumps_encodes_them(value):
    assert encode_json(value) == json.dumps(value, ensure_ascii=False).encode()


def test_dataclasses_sets_dates_and_arrays_are_converted():
    @dataclasses.dataclass
    class Point:
        x: int

    class Array:
        def tolist(self) -> list[int]:
            return [1, 2]

    value = [Point(1), {3}, datetime.date(2024, 1, 2), datetime.time(5, 6), Array()]
    assert json.loads(encode_json(value)) == [{"x": 1}, [3], "2024-01-02", "05:06:00", [1, 2]]


@pytest.mark.parametrize("value", [object(), math.nan, {"x": math.inf}])
def test_a_value_that_is_no_json_is_a_type_error(value):
    with pytest.raises(TypeError, match="the result cannot be encoded as JSON"):
        encode_json(value)


def test_error_bodies_are_what_starlettes_json_response_writes():
    expected = JSONResponse({"error": "zły 'x'", "type": "ValueError"}).body
    assert error_body("zły 'x'", "ValueError") == expected
