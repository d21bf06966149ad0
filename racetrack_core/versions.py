"""Semantic versions and the patterns that select them: exact, ``latest``, ``1.*``, ``1.x``."""

from __future__ import annotations

import re
from collections.abc import Iterable

import semver

WILDCARD_PART = re.compile(r"\*|x|X")
NUMBER = re.compile(r"0|[1-9][0-9]*")


def parse(version: str) -> semver.Version:
    """Parse a semantic version; raise ValueError with the offending text if it is not one."""
    try:
        return semver.Version.parse(version)
    except (ValueError, TypeError):
        raise ValueError(f"'{version}' is not a semantic version (like 1.2.3)") from None


def is_semver(version: str) -> bool:
    """Tell whether ``version`` is a valid semantic version."""
    try:
        semver.Version.parse(version)
    except (ValueError, TypeError):
        return False
    return True


def is_pattern(text: str) -> bool:
    """Tell whether ``text`` is a version selector: ``latest``, an exact version or a wildcard."""
    if text == "latest" or is_semver(text):
        return True
    return _wildcard_prefix(text) is not None


def _wildcard_prefix(pattern: str) -> list[int] | None:
    """Return the fixed leading numbers of a wildcard such as ``1.*`` or ``1.2.x``, else None."""
    parts = pattern.split(".")
    if not 2 <= len(parts) <= 3 or not WILDCARD_PART.fullmatch(parts[-1]):
        return None
    fixed = parts[:-1]
    if not all(NUMBER.fullmatch(part) for part in fixed):
        return None
    return [int(part) for part in fixed]


def matches(version: str, pattern: str) -> bool:
    """Tell whether ``version`` is selected by ``pattern`` (``latest`` selects every version)."""
    if pattern == "latest":
        return True
    prefix = _wildcard_prefix(pattern)
    if prefix is None:
        return version == pattern
    parsed = parse(version)
    numbers = [parsed.major, parsed.minor, parsed.patch]
    return numbers[: len(prefix)] == prefix


def overlap(first: str, second: str) -> bool:
    """Tell whether some version is selected by both patterns (``latest``, exact versions or
    wildcards): ``2.15.1`` and ``2.*`` overlap, ``2.*`` and ``2.1.x`` too, ``1.*`` and ``2.*``
    do not."""
    if "latest" in (first, second):
        return True
    if is_semver(first):
        return matches(first, second)
    if is_semver(second):
        return matches(second, first)
    a, b = _wildcard_prefix(first), _wildcard_prefix(second)
    if a is None or b is None:
        return False
    common = min(len(a), len(b))
    return a[:common] == b[:common]


def resolve(pattern: str, versions: Iterable[str], *, stable_only: bool = False) -> str | None:
    """Pick the version that ``pattern`` selects among ``versions``.

    An exact version selects itself. ``latest`` and wildcards select the highest matching
    version, preferring stable versions (no ``-label``) to pre-releases; with ``stable_only``
    a pre-release is never selected by ``latest`` or a wildcard.
    """
    candidates = [v for v in versions if is_semver(v) and matches(v, pattern)]
    if not candidates:
        return None
    if pattern != "latest" and _wildcard_prefix(pattern) is None:
        return candidates[0]
    stable = [v for v in candidates if parse(v).prerelease is None]
    if stable_only or stable:
        candidates = stable
    if not candidates:
        return None
    return max(candidates, key=parse)
