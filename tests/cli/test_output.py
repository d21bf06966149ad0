"""Tables and cells of the CLI's output."""

from __future__ import annotations

import pytest

from racetrack_cli.output import cell, print_table


def test_columns_are_as_wide_as_their_widest_cell(capsys: pytest.CaptureFixture[str]) -> None:
    print_table(("NAME", "VERSION"), [("python3", "1.0.0"), ("go", "-")])
    assert capsys.readouterr().out.splitlines() == [
        "NAME     VERSION",
        "python3  1.0.0",
        "go       -",
    ]


def test_cells() -> None:
    assert cell(None) == "-"
    assert cell("") == "-"
    assert cell([]) == "-"
    assert cell(["a", "b"]) == "a, b"
    assert cell("1.0") == "1.0"
