"""The listing predicates answer exactly as the one-job checks do, for every mix of grants."""

from __future__ import annotations

import itertools
import random

import pytest

from racetrack_core.lifecycle.permissions import allows, family_filter, scope_filter
from racetrack_core.storage.models import Permission, Scope

SCOPES = (Scope.READ_JOB, Scope.CALL_JOB, Scope.DEPLOY_JOB, Scope.FULL_ACCESS)
#: Every kind of grant: on all jobs, a family, a version (with or without a family, as a
#: grant may be stored), an endpoint of each, of the scope asked about, of another scope, or
#: full_access.
GRANTS = [
    Permission(
        subject_kind="user",
        subject_name="jane@example.com",
        scope=scope,
        job_family=family,
        job_version=version,
        endpoint=endpoint,
    )
    for scope in SCOPES
    for family in (None, "adder", "primer")
    for version in (None, "1.0.0", "2.0.0")
    for endpoint in (None, "/", "api/v1")
]
FAMILIES = ("adder", "primer", "other")
JOBS = [(family, version) for family in FAMILIES for version in ("1.0.0", "2.0.0", "3.0.0")]


def grant_sets() -> list[list[Permission]]:
    """No grant, each grant alone, each pair, and many larger random mixes."""
    rng = random.Random(20240611)  # noqa: S311 (mixes to reproduce, not secrets)
    singles = [[grant] for grant in GRANTS]
    pairs = [list(pair) for pair in itertools.combinations(GRANTS, 2)]
    mixes = [rng.sample(GRANTS, rng.randint(3, 12)) for _ in range(3000)]
    return [[], *singles, *pairs, *mixes]


@pytest.mark.parametrize("scope", [Scope.READ_JOB, Scope.CALL_JOB, Scope.DEPLOY_JOB])
def test_scope_filter_answers_as_allows_does(scope: Scope) -> None:
    checked = 0
    for grants in grant_sets():
        covers = scope_filter(grants, scope)
        for family, version in JOBS:
            expected = allows(grants, scope, family, version)
            assert covers(family, version) is expected, (grants, family, version)
            checked += 1
    assert checked > 50_000


@pytest.mark.parametrize("scope", [Scope.READ_JOB, Scope.CALL_JOB])
def test_family_filter_answers_as_a_walk_over_the_grants_does(scope: Scope) -> None:
    for grants in grant_sets():
        covers = family_filter(grants, scope)
        for family in FAMILIES:
            expected = any(
                grant.scope in (scope, Scope.FULL_ACCESS) and grant.job_family in (None, family)
                for grant in grants
            )
            assert covers(family) is expected, (grants, family)


def test_an_endpoint_grant_lists_no_job_but_lists_its_family() -> None:
    endpoint_only = [
        Permission(
            subject_kind="user",
            subject_name="jane@example.com",
            scope=Scope.READ_JOB,
            job_family="adder",
            endpoint="api/v1",
        )
    ]
    assert scope_filter(endpoint_only, Scope.READ_JOB)("adder", "1.0.0") is False
    assert family_filter(endpoint_only, Scope.READ_JOB)("adder") is True
