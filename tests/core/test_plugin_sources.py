"""Where a server installs plugins from: requirements and git URLs told apart, loopback and
private hosts refused unless allowed, credentials masked, uv's conflicts made a sentence."""

from __future__ import annotations

import re
from importlib import metadata

import pytest

from racetrack_core.plugin_sources import (
    SourceError,
    check_hosts,
    explain_conflict,
    parse,
    racetrack_pins,
)
from racetrack_core.source_hosts import SourceHostError, allowed_hosts, check_url


@pytest.mark.parametrize(
    ("spec", "kind", "name"),
    [
        ("racetrack-hello-jobtype", "index", "racetrack-hello-jobtype"),
        ("racetrack-hello-jobtype==0.1.0", "index", "racetrack-hello-jobtype"),
        ("hello[extra] >=1.0, <2", "index", "hello"),
        ("git+https://example.com/hello.git@v1.0", "git", None),
        ("hello @ git+http://example.com/hello.git", "git", "hello"),
    ],
)
def test_sources_are_told_apart(spec: str, kind: str, name: str | None) -> None:
    source = parse(spec)
    assert (source.kind, source.name, source.spec) == (kind, name, spec)


@pytest.mark.parametrize(
    "spec",
    [
        "/srv/racetrack/secret.whl",
        "--index-url=http://example.com",
        "hello @ https://example.com/hello.whl",
        "git+ssh://git@example.com/hello.git",
        "git+file:///etc",
        "hello; import os",
    ],
)
def test_other_sources_are_refused_with_the_forms_taken(spec: str) -> None:
    with pytest.raises(SourceError, match="give a requirement from its package index"):
        parse(spec)


def test_a_password_in_a_refused_source_is_masked() -> None:
    with pytest.raises(SourceError) as caught:
        parse("git+ftp://user:hunter2@example.com/x.git")
    assert "hunter2" not in str(caught.value)
    assert "***@example.com" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "git+http://127.0.0.1:9418/x.git",
        "git+http://localhost/x.git",
        "git+https://10.1.2.3/x.git",
        "git+https://[::1]/x.git",
        "git+https://169.254.169.254/x.git",
        "git+https://0.0.0.0/x.git",
    ],
)
def test_loopback_and_private_git_hosts_are_refused(url: str) -> None:
    with pytest.raises(SourceError, match=r"add '.*' to the setting source_allowed_hosts"):
        check_hosts(parse(url), "", "")


def test_a_refusal_masks_the_password_and_names_the_entry_to_allow() -> None:
    source = parse("git+http://tester:s3cret@127.0.0.1:8080/x.git")
    with pytest.raises(SourceError) as caught:
        check_hosts(source, "", "")
    message = str(caught.value)
    assert "s3cret" not in message
    assert "'http://***@127.0.0.1:8080/x.git'" in message
    assert "add '127.0.0.1:8080' to the setting source_allowed_hosts" in message


def test_the_allow_list_names_a_host_or_a_host_and_port() -> None:
    source = parse("git+http://127.0.0.1:8080/x.git")
    check_hosts(source, "", "127.0.0.1")
    check_hosts(source, "", "other, 127.0.0.1:8080")
    with pytest.raises(SourceError):
        check_hosts(source, "", "127.0.0.1:8081")


def test_the_package_index_is_checked_too() -> None:
    source = parse("racetrack-hello-jobtype")
    with pytest.raises(
        SourceError, match=re.escape("the package index 'http://127.0.0.1:3141/simple'")
    ):
        check_hosts(source, "http://127.0.0.1:3141/simple", "")
    check_hosts(source, "http://127.0.0.1:3141/simple", "127.0.0.1")
    check_hosts(source, "", "")  # uv's own index: the server's configuration, not checked


def test_public_addresses_need_no_allowing() -> None:
    check_url("https://93.184.216.34/simple", allowed_hosts(""), "the package index")


def test_a_url_without_a_host_is_refused() -> None:
    with pytest.raises(SourceHostError, match="has no host name"):
        check_url("http:///simple", frozenset(), "the package index")


def test_racetrack_pins_are_its_installed_requirements() -> None:
    pins = racetrack_pins()
    assert pins["racetrack-platform"] == metadata.version("racetrack-platform")
    assert pins["pluggy"] == metadata.version("pluggy")
    assert "pytest" not in pins  # a development tool, not a requirement


UV_CONFLICT = """error: No solution found when resolving dependencies
  cause: Because all versions of racetrack-pinbreaker depend on pluggy<1 and pluggy==1.5.0, we
         can conclude that all versions of racetrack-pinbreaker cannot be used.
         And because you require racetrack-pinbreaker==0.1.0, we can conclude that your
         requirements are unsatisfiable."""


def test_a_conflict_with_a_pin_is_one_sentence() -> None:
    sentence = explain_conflict(UV_CONFLICT, {"pluggy": "1.5.0"}, "racetrack-pinbreaker==0.1.0")
    assert sentence is not None
    assert sentence.startswith(
        "plugin racetrack-pinbreaker==0.1.0 needs pluggy<1 but Racetrack pins pluggy==1.5.0"
    )


def test_a_failure_naming_no_pin_is_left_to_uv() -> None:
    assert explain_conflict(UV_CONFLICT, {"click": "8.1.0"}, "x") is None
