"""The checks that the Dashboard's browser tests run on every page they see."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.dashboard.htmlcheck import forms_without_csrf, unlabelled_controls, validate_html

Validator = Callable[[dict[str, str]], list[str]]


def page(body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>Jobs</title></head>'
        f"\n<body>\n{body}\n</body>\n</html>\n"
    )


VALID = page(
    '<main><h1>Jobs</h1>\n<form method="post" action="/dashboard/jobs/adder/delete">'
    '<input type="hidden" name="csrf_token" value="t0k3n">'
    '<label for="reason">Reason</label><input id="reason" name="reason">'
    "<button>Delete</button></form></main>"
)


# --- validate_html ---------------------------------------------------------------------------

SAMPLES = {
    "jobs": VALID,
    "empty": page("<p>No jobs yet.</p>"),
    "misnested": page("<p><b><i>fast</b></i></p>"),
    "unclosed": page("<main><div><p>text</p>").replace("</body>\n</html>\n", ""),
    "jobs list": page('<p id="job">a</p>\n<p id="job">b</p>'),
}


@pytest.fixture(scope="module")
def sample_problems(html_validator: Validator) -> list[str]:
    """The problems in every sample, from one run of the checker (one JVM start)."""
    return html_validator(SAMPLES)


def test_valid_pages_pass(sample_problems: list[str]) -> None:
    assert not [p for p in sample_problems if p.startswith(("jobs:", "empty:"))], sample_problems


def test_misnested_element_fails_with_its_page_and_line(sample_problems: list[str]) -> None:
    assert any(
        problem.startswith("misnested:5:") and "violates nesting rules" in problem
        for problem in sample_problems
    ), sample_problems


def test_unclosed_element_fails(sample_problems: list[str]) -> None:
    assert any(
        problem.startswith("unclosed:") and "Unclosed element" in problem
        for problem in sample_problems
    ), sample_problems


def test_duplicate_id_fails(sample_problems: list[str]) -> None:
    assert any(
        problem.startswith("jobs list:6:") and "Duplicate ID" in problem
        for problem in sample_problems
    ), sample_problems


def test_no_pages_need_no_checker() -> None:
    assert validate_html({}) == []


# --- forms_without_csrf ----------------------------------------------------------------------


def test_post_form_with_token_passes() -> None:
    assert forms_without_csrf(VALID) == []


def test_post_form_without_token_is_reported_by_action() -> None:
    html = page(
        '<form method="POST" action="/dashboard/logout"><button>Log out</button></form>\n'
        '<form method="Post" action="/dashboard/tokens">'
        '<input type="hidden" name="csrf_token" value=""><button>New token</button></form>'
    )

    problems = forms_without_csrf(html)

    assert len(problems) == 2, problems
    assert "'/dashboard/logout'" in problems[0]
    assert "'/dashboard/tokens'" in problems[1]


def test_get_forms_are_exempt() -> None:
    html = page(
        '<form action="/dashboard/jobs"><input name="q" aria-label="Search"></form>'
        '<form method="get" action="/dashboard/jobs"><button>All</button></form>'
    )

    assert forms_without_csrf(html) == []


def test_a_token_outside_the_form_does_not_count() -> None:
    html = page(
        '<input type="hidden" name="csrf_token" value="t0k3n">'
        '<form method="post" action="/dashboard/login"><button>Log in</button></form>'
    )

    assert len(forms_without_csrf(html)) == 1


# --- unlabelled_controls ---------------------------------------------------------------------


def test_labelled_controls_pass() -> None:
    html = page(
        '<label for="user">E-mail</label><input id="user" type="email" name="username">'
        '<label>Password <input type="password" name="password"></label>'
        '<select aria-label="Infrastructure target" name="target"><option>local</option></select>'
        '<span id="note-label">Note</span><textarea aria-labelledby="note-label"></textarea>'
        '<input type="hidden" name="csrf_token" value="x"><input type="submit" value="Go">'
    )

    assert unlabelled_controls(html) == []


def test_unlabelled_controls_are_reported() -> None:
    html = page(
        '<label for="other">Other</label>'
        '<input type="text" name="username" id="user">\n'
        "<textarea name=note></textarea>"
    )

    problems = unlabelled_controls(html)

    assert len(problems) == 2, problems
    assert "name='username'" in problems[0]
    assert problems[1].startswith("line 6: <textarea")
