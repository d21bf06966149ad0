"""fit_gomod: go.mod files of newer Go read by the installed one (no go command needed)."""

from __future__ import annotations

import pytest

from racetrack_plugins.golang.gomod import GoModError, fit_gomod, parse_go_version

GO_1_19 = (1, 19, 8)


def test_a_go_mod_of_go_1_22_is_fitted_to_go_1_19() -> None:
    fitted = fit_gomod(
        "module example.com/job\n\ngo 1.22.0\n\ntoolchain go1.22.4\n\nrequire a.b/c v1.0.0\n",
        GO_1_19,
    )
    assert fitted.text == "module example.com/job\n\ngo 1.19\n\n\nrequire a.b/c v1.0.0\n"
    assert fitted.module == "example.com/job"
    assert fitted.requested == (1, 22, 0)
    assert fitted.asks_newer_than(GO_1_19)
    assert fitted.notes == [
        "go.mod line 3: 'go 1.22.0' read as 'go 1.19' for Go 1.19.8",
        "go.mod line 5: dropped 'toolchain go1.22.4' (Go 1.19 does not know this directive)",
    ]


@pytest.mark.parametrize(
    ("line", "fitted", "notes"),
    [("go 1.19", "go 1.19", 0), ("go 1.18.3", "go 1.18", 1), ("go 1.16 // old", "go 1.16", 1)],
)
def test_older_versions_keep_their_language_version(line: str, fitted: str, notes: int) -> None:
    result = fit_gomod(f"module example.com/job\n{line}\n", GO_1_19)
    assert result.text.splitlines()[1] == fitted
    assert len(result.notes) == notes
    assert not result.asks_newer_than(GO_1_19)


def test_godebug_blocks_and_tool_lines_are_dropped() -> None:
    text = (
        'module "example.com/job"\ngo 1.24\ngodebug (\n    default=go1.21\n    panicnil=1\n)\n'
        "godebug asynctimerchan=1\ntool example.com/gen\nrequire a.b/c v1.0.0\n"
    )
    fitted = fit_gomod(text, GO_1_19)
    assert fitted.text == 'module "example.com/job"\ngo 1.19\nrequire a.b/c v1.0.0\n'
    assert fitted.module == "example.com/job"
    assert len(fitted.notes) == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("module example.com/job\ngo 2.0\n", "go.mod line 2: 'go 2.0' is not a Go 1.x version"),
        ("go 1.19\n", "go.mod has no 'module' line"),
    ],
)
def test_unreadable_go_mod_files_are_refused(text: str, message: str) -> None:
    with pytest.raises(GoModError, match=message):
        fit_gomod(text, GO_1_19)


def test_go_versions_are_parsed_in_every_spelling() -> None:
    assert parse_go_version("go1.19.8") == (1, 19, 8)
    assert parse_go_version("1.21rc2") == (1, 21, 0)
    assert parse_go_version("1.22") == (1, 22, 0)
    assert parse_go_version("devel +abc") is None
