"""Checking a call's JSON arguments against a method's type hints."""

from __future__ import annotations

from typing import Any, Literal

import pytest

from racetrack_plugins.python3.wrapper.signature import read_signature, type_name, type_problem


class Point:
    pass


@pytest.mark.parametrize(
    ("value", "annotation"),
    [
        (1, int),
        (1, float),
        (1.5, float),
        (True, bool),
        ("x", str),
        ([1, 2], list[int]),
        ([1, "a"], list),
        ({"a": 1.0}, dict[str, float]),
        (None, int | None),
        ("b", Literal["a", "b"]),
        ([1, "a"], tuple[int, str]),
        ({"any": "thing"}, Point),
        (object(), Any),
    ],
)
def test_fitting_values(value, annotation):
    assert type_problem(value, annotation) is None


@pytest.mark.parametrize(
    ("value", "annotation", "problem"),
    [
        (True, int, "must be an integer, got boolean True"),
        (1.5, int, "must be an integer, got number 1.5"),
        (None, str, "must be a string, got null"),
        ({}, list[int], "must be an array, got object {}"),
        ([1, "a"], list[int], "item 1 must be an integer, got string 'a'"),
        ({"k": "v"}, dict[str, int], "key 'k' must be an integer, got string 'v'"),
        ("c", Literal["a", "b"], "must be one of ['a', 'b']"),
        ("x" * 100, int, "must be an integer, got string '" + "x" * 36 + "..."),
    ],
)
def test_values_that_do_not_fit(value, annotation, problem):
    assert type_problem(value, annotation) == problem


def test_type_names():
    assert [type_name(hint) for hint in (int, list[int], int | None, Any, Point)] == [
        "int",
        "list[int]",
        "int | None",
        "Any",
        "Point",
    ]


def test_string_annotations_are_resolved():
    def perform(x: "int", y: "list[str] | None" = None) -> "bool":  # noqa: UP037
        return True

    signature = read_signature(perform, "perform")
    assert [parameter.annotation for parameter in signature.parameters] == [int, list[str] | None]
    assert signature.return_annotation is bool


def test_an_unresolvable_annotation_falls_back_to_accepting_anything():
    def perform(x: "Missing") -> None:  # type: ignore[name-defined]  # noqa: F821, UP037
        return None

    signature = read_signature(perform, "perform")
    signature.check({"x": 1})
