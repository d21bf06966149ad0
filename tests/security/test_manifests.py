"""Hostile manifests: alias bombs (D4), values with a trailing newline (D8), over-long names and
versions (D3), credentials in git.remote (D9) and ``extends`` sent to the API (D7)."""

from __future__ import annotations

import base64
import gzip
import io
import json
import re
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from racetrack_core import PluginManager
from racetrack_core.errors import ManifestError
from racetrack_core.manifest import Manifest, load_manifest, parse_manifest
from racetrack_core.schema import core_schema, validate_manifest
from racetrack_core.testing.server import RacetrackServer

BASE = {"name": "hostile", "owner_email": "owner@example.com", "jobtype": "python3:latest"}
EXTRA = {"jobtype_extra": {"entrypoint_path": "entrypoint.py", "entrypoint_class": "Job"}}


def alias_bomb(levels: int = 9) -> str:
    """A small YAML text whose aliases expand to 10**levels strings (billion laughs)."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels + 1):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{','.join([previous] * 10)}]")
    return "name: bomb\nowner_email: o@example.com\njobtype: python3:latest\n" + "\n".join(lines)


@pytest.fixture(scope="module")
def plugins() -> PluginManager:
    manager = PluginManager()
    manager.load()
    return manager


def problems(data: dict[str, Any], plugins: PluginManager) -> str:
    with pytest.raises(ManifestError) as caught:
        validate_manifest(Manifest(data={**BASE, **EXTRA, **data}), plugins)
    return str(caught.value)


# -- D4: YAML aliases ------------------------------------------------------------------------


def test_an_alias_bomb_is_refused_within_a_second(tmp_path: Path) -> None:
    text = alias_bomb()
    assert len(text) < 1000
    (tmp_path / "job.yaml").write_text(text)
    started = time.monotonic()
    with pytest.raises(ManifestError, match="aliases"):
        load_manifest(tmp_path)
    assert time.monotonic() - started < 1.0


def test_a_few_aliases_still_work() -> None:
    text = "name: a\nowner_email: o@example.com\njobtype: python3:latest\n"
    text += "build_env: &env {A: '1'}\nruntime_env: *env\n"
    assert parse_manifest(text).data["runtime_env"] == {"A": "1"}


def test_a_huge_manifest_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text("name: a\n" + "# padding\n" * 200_000)
    with pytest.raises(ManifestError, match="larger than"):
        load_manifest(tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_an_alias_bomb_in_a_build_context_does_not_hold_a_worker(
    shared_server: RacetrackServer,
) -> None:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb") as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        content = alias_bomb().encode()
        info = tarfile.TarInfo("job.yaml")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    manifest = {**BASE, **EXTRA, "name": "bomb", "version": "0.0.1"}
    context = base64.b64encode(buffer.getvalue()).decode()
    answer = shared_server.api(
        "POST", "/deploy", json={"manifest": manifest, "build_context": context}
    )
    assert answer.status_code == 200, answer.text
    started = time.monotonic()
    while True:  # until the deployment is past validation (it fails later: no entrypoint.py)
        record = shared_server.api("GET", f"/deploy/{answer.json()['id']}").json()
        phases = [entry["phase"] for entry in record["phases"]]
        if record["status"] != "in_progress" or "building" in phases:
            break
        assert time.monotonic() - started < 10, record
        time.sleep(0.1)
    times = {entry["phase"]: entry["time"] for entry in record["phases"]}
    assert times["building"] - times["validating manifest"] < 1.0, record
    assert "job.yaml in the source does not load" in str(record["warnings"]), record


# -- D8: whole values ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "abc\n"),
        ("version", "1.0.0\n"),
        ("owner_email", "o@example.com\n"),
        ("jobtype", "python3:latest\n"),
        ("infrastructure_target", "local\n"),
        ("git", {"remote": "https://example.com/job.git\n"}),
        ("git", {"remote": "https://example.com/job.git", "branch": "main\n"}),
        ("public_endpoints", ["/api/v1/perform\n"]),
        ("labels", {"team\n": "x"}),
        ("build_env", {"A\n": "1"}),
        ("system_dependencies", ["libpq5\n"]),
    ],
)
def test_a_trailing_newline_is_refused(field: str, value: Any, plugins: PluginManager) -> None:
    assert "field '" in problems({field: value}, plugins)


def test_unicode_digits_are_not_digits(plugins: PluginManager) -> None:
    assert "field 'version'" in problems({"version": "1.0.\u0663"}, plugins)  # Arabic-Indic 3


def test_the_published_schema_stays_ecma_262() -> None:
    """Its patterns use no Python-only syntax (\\Z, \\A, (?P<, lookbehind, inline flags)."""
    text = json.dumps(core_schema())
    for python_only in (r"\\Z", r"\\A", "(?P<", "(?<", "(?i", "(?s", "(?m", "(?x"):
        assert python_only not in text


# -- D3: lengths -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("version", "1.0.0-" + "a" * 250),
        ("version", "1.0.0-" + "a" * 5000),
        ("name", "a" * 300),
        ("owner_email", "o@" + "e" * 300),
        ("git", {"remote": "https://example.com/" + "j" * 5000}),
        ("labels", {"team": "x" * 1_000_000}),
        ("runtime_env", {"A": "x" * 1_000_000}),
    ],
)
def test_overlong_values_are_refused(field: str, value: Any, plugins: PluginManager) -> None:
    message = problems({field: value}, plugins)
    assert f"field '{field}" in message
    assert "too long" in message or "at most" in message
    assert len(message) < 1000  # the value itself is not repeated whole


def test_the_limits_are_in_the_published_schema() -> None:
    schema = core_schema()
    assert schema["properties"]["version"]["maxLength"] == 64
    assert schema["properties"]["name"]["maxLength"] == 50


# -- D9: credentials in git.remote -----------------------------------------------------------


def test_a_password_in_git_remote_is_not_repeated(plugins: PluginManager) -> None:
    message = problems(
        {"git": {"remote": "http://user:S3cretPassw0rd@example.com/job.git"}}, plugins
    )
    assert "S3cretPassw0rd" not in message
    assert "git.remote" in message


# -- through the API -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(shared_server: RacetrackServer) -> RacetrackServer:
    return shared_server


def deploy_answer(server: RacetrackServer, manifest: dict[str, Any]) -> tuple[int, str]:
    answer = server.api("POST", "/deploy", json={"manifest": manifest, "build_context": None})
    return answer.status_code, answer.text


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_api_refuses_hostile_manifests(server: RacetrackServer) -> None:
    manifest = {**BASE, **EXTRA, "version": "1.0.0-" + "a" * 250}
    status, text = deploy_answer(server, manifest)
    assert status == 400, text
    assert "field 'version'" in text

    status, text = deploy_answer(server, {**BASE, **EXTRA, "name": "abc\n"})
    assert status == 400, text
    assert "field 'name'" in text

    remote = "http://user:S3cretPassw0rd@127.0.0.1:9/job.git"
    status, text = deploy_answer(server, {**BASE, **EXTRA, "git": {"remote": remote}})
    assert status == 400, text
    assert "S3cretPassw0rd" not in text
    assert "S3cretPassw0rd" not in server.log()


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("extends", ["srvfile.yaml", "/etc/passwd", "", 5])
def test_the_api_refuses_extends(server: RacetrackServer, extends: Any) -> None:
    status, text = deploy_answer(server, {**BASE, **EXTRA, "extends": extends})
    assert status == 400, text
    assert "'extends' is resolved by the client" in text


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_extends_null_stays_accepted(server: RacetrackServer) -> None:
    manifest = {**BASE, **EXTRA, "name": "nullextends", "extends": None}
    status, text = deploy_answer(server, manifest)
    assert status == 200, text
    stored = server.api("GET", f"/deploy/{json.loads(text)['id']}").json()
    assert "extends:" not in str(stored.get("manifest_yaml", stored.get("manifest", ""))), stored


def test_a_stored_manifest_never_reads_a_server_file(tmp_path: Path, monkeypatch: Any) -> None:
    """What the watcher does after a restart: parse the stored YAML with no base directory."""
    (tmp_path / "srvfile.yaml").write_text("runtime_env: {STOLEN: '1'}\n")
    monkeypatch.chdir(tmp_path)
    text = "name: a\nowner_email: o@example.com\njobtype: python3:latest\nextends: srvfile.yaml\n"
    with pytest.raises(ManifestError, match="extends"):
        parse_manifest(text)
    assert (
        re.search("STOLEN", json.dumps(parse_manifest(text.replace("extends", "#")).data)) is None
    )


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "credentials",
    [{"username": 5, "password": "p"}, {"username": "u", "password": ["p"]}, "u:p", ["u", "p"]],
)
def test_git_credentials_of_the_wrong_type_are_a_400(
    server: RacetrackServer, credentials: Any
) -> None:
    manifest = {**BASE, **EXTRA, "git": {"remote": "https://example.com/job.git"}}
    answer = server.api(
        "POST", "/deploy", json={"manifest": manifest, "git_credentials": credentials}
    )
    assert answer.status_code == 400, answer.text
    assert "git_credentials" in answer.json()["error"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: 2023-02-30\n", "put quotes around it"),  # an implicit date that is no date
        ("name: !!int x\n", "put quotes around it"),
        ("name: a\nlabels: !!omap [a: 1]\n", "field 'labels' holds a value of type"),
        ("name: a\nlabels: !!set {a, b}\n", "field 'labels' holds a value of type"),
        ("name: !foo x\n", "field 'name' holds a value of type TaggedScalar"),
        ("? {a: 1}\n: c\n", "holds a key of type"),
    ],
)
def test_values_that_are_not_plain_data_are_a_manifest_error(text: str, expected: str) -> None:
    """Found by fuzzing: these raised ValueError or TypeError out of the loader."""
    with pytest.raises(ManifestError, match=re.escape(expected)):
        parse_manifest(text)


def test_an_extra_variable_that_is_no_yaml_scalar_is_kept_as_text() -> None:
    manifest = parse_manifest("name: a\n", extra_vars=["version=!!int x", "labels.d=2023-02-30"])
    assert manifest.data["version"] == "!!int x"
    assert manifest.data["labels"] == {"d": "2023-02-30"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: !!bool \n", "a value cannot be read (KeyError"),
        ("name: !!float ''\n", "a value cannot be read (IndexError"),
        ("[" * 5000, "more than 32 levels deep"),  # RecursionError inside the YAML parser
        ("labels: " + "[" * 40 + "]" * 40 + "\n", "more than 32 levels deep"),
    ],
)
def test_unreadable_or_too_deep_yaml_is_a_manifest_error(text: str, expected: str) -> None:
    """Found by fuzzing: KeyError, IndexError and RecursionError escaped the loader."""
    started = time.monotonic()
    with pytest.raises(ManifestError, match=re.escape(expected)):
        parse_manifest(text)
    assert time.monotonic() - started < 1
