"""Version selection: exact versions, ``latest`` and wildcards, with and without pre-releases."""

from __future__ import annotations

import pytest

from racetrack_core import versions

pytestmark = pytest.mark.smoke  # fast and self-contained: run in the first-run test

AVAILABLE = ["0.9.0", "1.0.0", "1.2.0", "1.2.3", "1.10.0", "2.0.0-rc.1", "2.0.0-rc.2"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("1.2.0", "1.2.0"),
        ("2.0.0-rc.1", "2.0.0-rc.1"),
        ("latest", "1.10.0"),
        ("1.*", "1.10.0"),
        ("1.x", "1.10.0"),
        ("1.X", "1.10.0"),
        ("1.2.x", "1.2.3"),
        ("1.2.*", "1.2.3"),
        ("0.x", "0.9.0"),
    ],
)
def test_resolve_selects_the_highest_stable_match(pattern: str, expected: str) -> None:
    assert versions.resolve(pattern, AVAILABLE) == expected


def test_resolve_compares_versions_numerically_not_as_text() -> None:
    assert versions.resolve("latest", ["1.9.0", "1.10.0", "1.2.0"]) == "1.10.0"


def test_latest_prefers_a_stable_version_to_a_newer_pre_release() -> None:
    assert versions.resolve("latest", ["1.0.0", "1.1.0-rc.1"]) == "1.0.0"


def test_pre_releases_are_chosen_only_when_nothing_stable_matches() -> None:
    assert versions.resolve("2.x", AVAILABLE) == "2.0.0-rc.2"
    assert versions.resolve("latest", ["1.0.0-rc.2", "1.0.0-rc.10"]) == "1.0.0-rc.10"
    assert versions.resolve("latest", ["1.0.0-alpha", "1.0.0-beta"]) == "1.0.0-beta"


def test_stable_only_never_selects_a_pre_release_by_pattern() -> None:
    assert versions.resolve("2.x", AVAILABLE, stable_only=True) is None
    assert versions.resolve("latest", ["1.0.0-rc.1"], stable_only=True) is None
    assert versions.resolve("latest", AVAILABLE, stable_only=True) == "1.10.0"


@pytest.mark.parametrize("pattern", ["3.0.0", "3.x", "1.3.x", "1.2.4", "0.8.*"])
def test_resolve_without_a_match_is_none(pattern: str) -> None:
    assert versions.resolve(pattern, AVAILABLE) is None


def test_resolve_among_nothing_is_none() -> None:
    assert versions.resolve("latest", []) is None


def test_resolve_ignores_entries_that_are_not_versions() -> None:
    assert versions.resolve("latest", ["banana", "1.0.0", "2"]) == "1.0.0"


@pytest.mark.parametrize("pattern", ["latest", "1.2.3", "1.0.0-rc.1", "1.*", "1.x", "1.2.x", "0.X"])
def test_valid_patterns(pattern: str) -> None:
    assert versions.is_pattern(pattern)


@pytest.mark.parametrize(
    "pattern",
    [
        "",
        "1",
        "1.2",
        "v1.2.3",
        "*",
        "x",
        "x.x",
        "1.x.x",
        "1.*.3",
        "1.2.3.x",
        "1.y",
        "newest",
        "Latest",
    ],
)
def test_invalid_patterns(pattern: str) -> None:
    assert not versions.is_pattern(pattern)
    assert versions.resolve(pattern, AVAILABLE) is None


@pytest.mark.parametrize(
    ("version", "pattern", "expected"),
    [
        ("1.2.3", "1.x", True),
        ("1.2.3", "1.2.x", True),
        ("1.2.3", "1.3.x", False),
        ("2.0.0", "1.*", False),
        ("1.2.3", "latest", True),
        ("1.2.3", "1.2.3", True),
        ("1.2.3", "1.2.4", False),
        ("1.2.3-rc.1", "1.2.x", True),
    ],
)
def test_matches(version: str, pattern: str, expected: bool) -> None:
    assert versions.matches(version, pattern) is expected


def test_parse_names_the_offending_text() -> None:
    with pytest.raises(ValueError, match=r"^'1\.2' is not a semantic version \(like 1\.2\.3\)$"):
        versions.parse("1.2")
    assert versions.parse("1.2.3-rc.1").prerelease == "rc.1"


@pytest.mark.parametrize(
    ("text", "expected"), [("1.0.0", True), ("1.0", False), ("1.0.0\n", False)]
)
def test_is_semver(text: str, expected: bool) -> None:
    assert versions.is_semver(text) is expected


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("2.15.1", "2.*", True),
        ("2.*", "2.15.1", True),
        ("2.*", "2.1.x", True),
        ("1.*", "2.*", False),
        ("2.15.1", "2.15.1", True),
        ("2.15.1", "2.15.2", False),
        ("3.0.0", "2.*", False),
        ("latest", "2.*", True),
    ],
)
def test_overlap(first: str, second: str, expected: bool) -> None:
    assert versions.overlap(first, second) is expected
